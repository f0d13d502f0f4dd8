/**
 * The fast path of masking: one pass over a text that proves the rules of
 * masking.ts have nothing to change in it (most bodies), and the one regular
 * expression that finds any configured field name. Written by hand because no
 * library builds a multi-pattern automaton with these rules (case-folded,
 * separators skipped inside names, a card-number prefix run alongside) as one
 * table; correctness is checked against the rules themselves in
 * test/capture/masking.test.ts. Also the vocabulary both files share.
 */

/** What may stand between a field name's letters, as a character class's contents: normalize() drops it, fieldScan() and CleanScan skip it. */
export const SEPARATORS = '-_\\s.'
export const SEPARATOR = new RegExp(`[${SEPARATORS}]`)
/** The authorization schemes whose credentials the value rules mask (BEARER), and every quicker check for them. */
export const SCHEMES = ['Bearer', 'Basic', 'Token', 'Digest']
/** What may stand between a card number's digits (a character class's body: '-' last, so literal). */
export const CARD_SEPARATORS = ' -'
export const CARD_SEPARATOR = `[${CARD_SEPARATORS}]`
/**
 * Thirteen digits with at most one separator between them: what every CARD match starts with, spelled out so the
 * scan is about 10× faster than CARD's (the bodies of most APIs are full of shorter numbers).
 */
export const CARD_START_DIGITS = 13

/** The ASCII bytes among SEPARATORS. */
const SEPARATOR_BYTES = new Set(Array.from({length: 128}, (_, c) => c).filter((c) => SEPARATOR.test(String.fromCharCode(c))))
/** The words the value rules start from (BEARER's schemes, JWT's eyJ) and maskBody()'s escapes (`\\u`, `%`), matched here as loosely as the field names. */
const OTHER_WORDS = [...SCHEMES, 'eyJ', '\\u', '%']
/** The automaton's state for "the text rules must look": every transition into an accepting state, and every byte outside ASCII or NUL (which bodyText() replaces). */
const STOP = 0xffff

/**
 * One pass over a body's bytes that says whether maskBody() could change it: an automaton (Aho-Corasick,
 * as one table) over every field name and OTHER_WORDS, case-insensitive and skipping separators exactly as
 * fieldScan() does, and one for CARD_START (thirteen digits, at most one separator between two).
 * A byte outside ASCII, or NUL, ends the scan: the text rules decide. Each check is a superset of its
 * rule (no word boundaries, eyJ in any case), so "clean" is never wrong.
 */
export class CleanScan {
  /** next[state * 256 + byte]: the automaton's transitions, separators staying in place, A-Z as a-z; STOP ends the scan. */
  private constructor(private readonly next: Uint16Array) {}

  /** The scan for these (normalised) field names; none when a name is not ASCII (the text rules compare those). */
  static for(fields: string[]): CleanScan | undefined {
    const words = [...new Set([...fields, ...OTHER_WORDS])]
    // eslint-disable-next-line no-control-regex -- the automaton's alphabet is ASCII without NUL, spelled as a range
    if (words.some((w) => /[^\x01-\x7f]/.test(w))) return undefined
    const children: Array<Map<number, number>> = [new Map()]
    const accepting = [false]
    for (const w of words) {
      let state = 0
      for (const c of Buffer.from(w.toLowerCase(), 'latin1')) {
        let child = children[state].get(c)
        if (child === undefined) {
          child = children.push(new Map()) - 1
          accepting.push(false)
          children[state].set(c, child)
        }
        state = child
      }
      accepting[state] = true
    }
    // transitions over ASCII, failure links folded in (breadth first: a state's failure is done before it)
    const go = (state: number, c: number) => table[state * 128 + c]
    const table = new Int32Array(children.length * 128)
    const fail = new Int32Array(children.length)
    const queue: number[] = []
    for (let c = 0; c < 128; c++) {
      const child = children[0].get(c)
      table[c] = child ?? 0
      if (child !== undefined) queue.push(child)
    }
    for (let q = 0; q < queue.length; q++) {
      const state = queue[q]
      accepting[state] ||= accepting[fail[state]]
      for (let c = 0; c < 128; c++) {
        const child = children[state].get(c)
        if (child === undefined) table[state * 128 + c] = go(fail[state], c)
        else {
          fail[child] = go(fail[state], c)
          table[state * 128 + c] = child
          queue.push(child)
        }
      }
    }
    if (children.length >= STOP) return undefined
    const next = new Uint16Array(children.length * 256).fill(STOP) // bytes outside ASCII stop
    for (let state = 0; state < children.length; state++) {
      for (let c = 1; c < 128; c++) {
        const folded = c >= 0x41 && c <= 0x5a ? c | 0x20 : c
        const to = SEPARATOR_BYTES.has(c) ? state : go(state, folded)
        next[state * 256 + c] = accepting[to] ? STOP : to
      }
    }
    return new CleanScan(next)
  }

  /**
   * Runs both automata as two chains each, over each half of the bytes: each step waits for the last
   * one's table load, and four chains overlap those waits (about 2.5 times as fast as one). The
   * second half's chains start without the first half's context, so the first half's go on past the
   * middle until both are back at their start state: from there on the second half's are exact (a
   * word or a run of digits that began before is over, or seen whole by the first half's).
   */
  clean(bytes: Uint8Array): boolean {
    const {next} = this
    const n = bytes.length
    const half = n >> 1
    let a = 0
    let b = 0
    let cardA = 0
    let cardB = 0
    let i = 0
    for (let j = half; i < half; i++, j++) {
      const x = bytes[i]
      const y = bytes[j]
      a = next[(a << 8) | x]
      b = next[(b << 8) | y]
      cardA = CARD_NEXT[(cardA << 8) | x]
      cardB = CARD_NEXT[(cardB << 8) | y]
      if (a === STOP || b === STOP || cardA === CARD_STOP || cardB === CARD_STOP) return false
    }
    for (let j = half + half; j < n; j++) {
      // an odd length's last byte
      b = next[(b << 8) | bytes[j]]
      cardB = CARD_NEXT[(cardB << 8) | bytes[j]]
      if (b === STOP || cardB === CARD_STOP) return false
    }
    for (; (a !== 0 || cardA !== 0) && i < n; i++) {
      a = next[(a << 8) | bytes[i]]
      cardA = CARD_NEXT[(cardA << 8) | bytes[i]]
      if (a === STOP || cardA === CARD_STOP) return false
    }
    return true
  }
}

/**
 * CARD_START as an automaton: state 2d-1 after d digits in a row, 2d after a separator (CARD_SEPARATORS)
 * that follows the d-th; 0 outside a run; CARD_STOP at the thirteenth digit.
 */
const CARD_STOP = 255
const CARD_SEPARATOR_BYTES = new Set(Array.from(CARD_SEPARATORS, (c) => c.charCodeAt(0)))
const CARD_NEXT = (() => {
  const states = 2 * CARD_START_DIGITS // 0, and two for each digit before the last
  const next = new Uint8Array(states * 256)
  for (let state = 0; state < states; state++) {
    const digits = (state + 1) >> 1
    const separated = state > 0 && state % 2 === 0
    for (let c = 0; c < 256; c++) {
      let to = 0
      if (c >= 0x30 && c <= 0x39) to = digits + 1 >= CARD_START_DIGITS ? CARD_STOP : 2 * (digits + 1) - 1
      else if (CARD_SEPARATOR_BYTES.has(c) && digits > 0 && !separated) to = 2 * digits
      next[state * 256 + c] = to
    }
  }
  return next
})()

type Trie = Map<string, Trie> & {end?: boolean}

/**
 * One prebuilt scan for any field name, in any case, with separators anywhere
 * between its letters (p_ass-word). The names are merged into a trie, so at
 * each position of the text the scan tries a few first letters rather than
 * every name: 40% faster on a 4 KiB body than one alternative per name.
 */
export function fieldScan(fields: string[]): RegExp {
  const SEP = `[${SEPARATORS}]*`
  const escape = (c: string) => c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')
  const root: Trie = new Map()
  for (const f of new Set(fields)) {
    let node = root
    for (const c of f) {
      if (!node.has(c)) node.set(c, new Map())
      node = node.get(c)!
    }
    node.end = true
  }
  const emit = (node: Trie): string => {
    const alternatives = [...node].map(([c, child]) => {
      if (child.size === 0) return escape(c)
      const rest = SEP + emit(child)
      return escape(c) + (child.end ? `(?:${rest})?` : rest) // a name that is a prefix of another ends here too
    })
    return alternatives.length === 1 ? alternatives[0] : `(?:${alternatives.join('|')})`
  }
  return root.size ? new RegExp(emit(root), 'i') : /(?!)/
}
