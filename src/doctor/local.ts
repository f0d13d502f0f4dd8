import {accessSync, closeSync, constants, existsSync, openSync, readFileSync, readSync, readdirSync, statSync, statfsSync} from 'node:fs'
import path from 'node:path'
import type {ResolvedConfig} from '../config/resolve.js'
import {defaultJournalBytes} from '../pipeline/journal-bound.js'
import {OPEN, SEALED} from '../pipeline/journal.js'
import {parseHostPort} from '../server/settings.js'
import {formatBytes} from '../util/bytes.js'
import {isAlive, procStat} from '../util/process.js'
import {type Check, fail, ok, skip, warn} from './check.js'

/** The journal's fill (backlog against its bound) past which doctor warns, and fails. */
export const JOURNAL_WARN = 0.5
export const JOURNAL_FAIL = 0.9

export const journalDirOf = (config: ResolvedConfig) => path.resolve(config.journalDir ?? path.join(config.dataDir, 'journal'))

/** The nearest directory of `dir` that exists (a journal not made yet is on its parent's file system). */
function existing(dir: string): string {
  let d = dir
  while (!existsSync(d) && path.dirname(d) !== d) d = path.dirname(d)
  return d
}

/**
 * The bytes of the journal's segments. Not journalBytes: listing the segments seals the open one of a
 * writer that is gone (a rename), and doctor changes nothing.
 */
function segmentBytes(dir: string): number {
  let n = 0
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(OPEN) && !f.endsWith(SEALED)) continue
    try {
      n += statSync(path.join(dir, f)).size
    } catch {
      // shipped and collected meanwhile
    }
  }
  return n
}

/** Lines in `file`, read in chunks: a dead-letter file can be large. */
function countLines(file: string): number {
  const fd = openSync(file, 'r')
  const buf = Buffer.alloc(1 << 16)
  let lines = 0
  let last = 10
  try {
    for (let got; (got = readSync(fd, buf, 0, buf.length, null)) > 0;) {
      for (let i = 0; i < got; i++) if (buf[i] === 10) lines++
      last = buf[got - 1]
    }
  } finally {
    closeSync(fd)
  }
  return lines + (last === 10 ? 0 : 1) // a last line without its newline
}

/** The journal's backlog against its bound, the free space against journalMaxBytes, and the dead letters kept. */
export function journalChecks(config: ResolvedConfig): Check[] {
  const dir = journalDirOf(config)
  const out: Check[] = []
  const backlog = existsSync(dir) ? segmentBytes(dir) : 0
  let free: number | undefined
  try {
    const fs = statfsSync(existing(dir))
    free = fs.bavail * fs.bsize
  } catch {
    // unknown: said below
  }
  // the bound run would take (journalBound, without its listing of the segments): configured, or from the free space
  const bound = {bytes: config.journalMaxBytes ?? defaultJournalBytes(free === undefined ? 4 * 1024 ** 3 : free + backlog)}
  const fill = backlog / bound.bytes
  const said = `${formatBytes(backlog)} not yet shipped in ${dir}, ${(fill * 100).toFixed(1)}% of its bound ${formatBytes(bound.bytes)}`
  const fix = "make the stores reachable (the checks above); `curl http://<adminBind>/health` shows each sink's lag and last error"
  if (fill >= JOURNAL_FAIL) out.push(fail('journal backlog', said, fix))
  else if (fill >= JOURNAL_WARN) out.push(warn('journal backlog', said, fix))
  else out.push(ok('journal backlog', said))

  if (free === undefined) out.push(skip('disk free', `the free space of ${existing(dir)} cannot be read`))
  else if (config.journalMaxBytes === undefined)
    out.push(ok('disk free', `${formatBytes(free)} free; the journal's bound (${formatBytes(bound.bytes)}) is derived from it at start`))
  else if (free + backlog < config.journalMaxBytes)
    out.push(
      warn(
        'disk free',
        `${formatBytes(free)} free and ${formatBytes(backlog)} in the journal, less than journalMaxBytes ${formatBytes(config.journalMaxBytes)}: the disk fills before the journal reaches its bound`,
        `lower journalMaxBytes (AUDIT_LOGS_JOURNAL_MAX_BYTES) to at most ${free + backlog}, or free space on ${existing(dir)}`,
      ),
    )
  else out.push(ok('disk free', `${formatBytes(free)} free, room for journalMaxBytes ${formatBytes(config.journalMaxBytes)}`))

  const letters = path.join(dir, 'dead-letter')
  const files = existsSync(letters) ? readdirSync(letters).filter((f) => f.endsWith('.jsonl')) : []
  const waiting = files.map((f) => ({file: path.join(letters, f), records: countLines(path.join(letters, f))})).filter((w) => w.records > 0)
  out.push(
    waiting.length
      ? warn(
          'dead letters',
          `records the stores refused: ${waiting.map((w) => `${w.records} in ${w.file}`).join(', ')}`,
          `read each line's error, correct and insert its record by hand (or keep it as the trail), then move ${waiting[0].file} away`,
        )
      : ok('dead letters', 'none'),
  )
  out.push(journalDirCheck(dir))
  return out
}

/**
 * The journal directory's own mode, and its entries': the journal holds the records before any store has them, so
 * the writer makes it 0700 and its files 0600 (MODES.private*); a directory made by hand or an install step may be
 * wider. Graded as the log directory's o+r: a warning, with the chmod that fixes it.
 */
const JOURNAL_CLAIM = 'owner.pid'

function journalDirCheck(dir: string): Check {
  const name = 'journal directory'
  if (!existsSync(dir)) return ok(name, `${dir} does not exist yet: run makes it (mode 0700)`)
  const open: string[] = []
  const modeOf = (p: string) => statSync(p).mode & 0o777
  const visit = (p: string, depth: number) => {
    let mode: number
    try {
      mode = modeOf(p)
    } catch {
      return // shipped and collected meanwhile
    }
    // run's claim (owner.pid) holds a pid only, readable as util/claim.ts makes it
    if (mode & 0o077 && !(depth === 1 && path.basename(p) === JOURNAL_CLAIM)) open.push(`${p} (${mode.toString(8).padStart(4, '0')})`)
    if (depth > 0 && statSync(p, {throwIfNoEntry: false})?.isDirectory()) for (const f of readdirSync(p)) visit(path.join(p, f), depth - 1)
  }
  visit(dir, 2) // the segments, and dead-letter/ and checkpoints/ with their files
  if (open.length)
    return warn(
      name,
      `group or others have rights on the journal, which holds the records before any store has them: ` +
        `${open.slice(0, 3).join(', ')}${open.length > 3 ? ` and ${open.length - 3} more` : ''}`,
      `chmod -R go-rwx ${dir}`,
    )
  return ok(name, `${dir}: private to its owner (0700)`)
}

const LOG_CLAIM = '.audit-logs-owner.pid'

/** The log directory (the file sink's): writable by this user, and nothing in it readable by others (o+r). */
export function logDirCheck(config: ResolvedConfig): Check {
  const name = 'log directory'
  if (!config.fileSink) return skip(name, 'the file sink is off (fileSink)')
  const dir = path.resolve(config.logDir)
  if (!existsSync(dir)) {
    const parent = existing(dir)
    try {
      accessSync(parent, constants.W_OK | constants.X_OK)
      if (!statSync(parent).isDirectory()) throw new Error('not a directory')
    } catch {
      return fail(
        name,
        `${dir} does not exist and ${parent} cannot hold it`,
        `set logDir (AUDIT_LOGS_LOG_DIR) to a directory this user can write`,
      )
    }
    return ok(name, `${dir} does not exist yet: run makes it (mode 0750)`)
  }
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('it is a file, not a directory'), {code: 'ENOTDIR'})
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (error) {
    return fail(
      name,
      `${dir} is not writable: ${(error as Error).message}`,
      `chmod u+rwx ${dir}, or set logDir (AUDIT_LOGS_LOG_DIR) to a directory this user can write`,
    )
  }
  // records hold IPs, user ids, headers and bodies: readable by the owner and its group (a log shipper), never by others
  // (run's claim file holds a pid only, readable as util/claim.ts makes it)
  const files = readdirSync(dir).filter((f) => f !== LOG_CLAIM)
  const open = [dir, ...files.map((f) => path.join(dir, f))].filter((p) => (statSync(p).mode & 0o004) !== 0)
  if (open.length)
    return warn(
      name,
      `readable by every user of the host (o+r): ${open.slice(0, 3).join(', ')}${open.length > 3 ? ` and ${open.length - 3} more` : ''}`,
      `chmod -R o-rwx ${dir}`,
    )
  return ok(name, `${dir}: writable, not readable by others`)
}

/** The pid of the live process holding `file`'s claim (see util/claim.ts), if any. */
function holder(file: string): number | undefined {
  let claim: string[]
  try {
    claim = readFileSync(file, 'utf8').trim().split(' ')
  } catch {
    return undefined
  }
  const pid = Number(claim[0])
  const stat = procStat(pid)
  const live = pid > 0 && isAlive(pid) && (!stat || ((!claim[1] || stat.start === claim[1]) && stat.state !== 'Z'))
  return live ? pid : undefined
}

/** Whether a `run` holds the journal and log directories, and when one does, its /health. */
export async function runChecks(config: ResolvedConfig): Promise<Check[]> {
  const journal = holder(path.join(journalDirOf(config), JOURNAL_CLAIM))
  const logs = config.fileSink ? holder(path.join(path.resolve(config.logDir), LOG_CLAIM)) : undefined
  if (journal === undefined && logs === undefined)
    return [ok('run', 'no run holds the journal or log directory'), skip('run /health', 'no run is up')]
  const held = [journal !== undefined && `the journal (pid ${journal})`, logs !== undefined && `the log directory (pid ${logs})`].filter(
    Boolean,
  )
  const out: Check[] = [ok('run', `a run holds ${held.join(' and ')}`)]
  const admin = parseHostPort('adminBind', config.adminBind)
  const host = admin.host === '0.0.0.0' || admin.host === '::' ? '127.0.0.1' : admin.host
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}/health`
  try {
    const res = await fetch(url, {signal: AbortSignal.timeout(5000)})
    const body = (await res.json().catch(() => ({}))) as {status?: string; journalFull?: boolean}
    if (res.status === 200 && body.status === 'ok') out.push(ok('run /health', `${url}: ok`))
    else
      out.push(
        warn(
          'run /health',
          `${url}: HTTP ${res.status}, status ${body.status ?? 'unknown'}${body.journalFull ? ' (the journal is full)' : ''}`,
          `curl ${url}  (each sink's lagBytes and lastError say which store holds it up)`,
        ),
      )
  } catch (error) {
    out.push(
      warn(
        'run /health',
        `${url} does not answer (${(error as Error).message}): the run may use another adminBind than this configuration`,
        'give doctor the configuration run uses (--config, the same environment)',
      ),
    )
  }
  return out
}
