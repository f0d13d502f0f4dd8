import net from 'node:net'
import {z} from 'zod'
import {MASK, type Masker} from '../capture/masking.js'
import {type Hooks, maskedLine, newRecordId} from '../capture/record.js'
import {ACTION, SEVERITIES} from '../filters/parse.js'
import {RECORD_ID} from '../stores/source.js'

/**
 * An application event (README, data model): what an app, a shell script or
 * the proxy itself says happened. Validated here, at the one way in (the
 * ingest endpoint and `audit-logs event` both call eventLine), masked, and
 * made the flat record every store keeps: actor and target are two fields
 * each, so they can be indexed and filtered.
 */

/** The bounds of an event's fields: every indexed text fits a btree entry, and no JSON nests deep enough to trouble a store. */
export const EVENT_LIMITS = {id: 200, name: 200, reason: 4000, depth: 32}

const text = (max: number, what: string) =>
  z
    .string({error: `${what}: a string`})
    .min(1, `${what}: not empty`)
    .max(max, `${what}: at most ${max} characters`)
/** An id may be given as a number (a database key): kept as its text. */
const idText = (what: string) =>
  z.union([text(EVENT_LIMITS.id, what), z.number({error: `${what}: a string or a number`}).finite()]).transform(String)

const json = z.record(z.string(), z.unknown(), {error: 'a JSON object'})

const FIELDS = 'id, created_at, action, actor, target, changes, reason, severity, request_id, ip, instance, extra'

export const eventSchema = z.strictObject(
  {
    id: z.string().regex(RECORD_ID, 'a UUID (the client may choose it: sent again, it is kept once)').optional(),
    created_at: z.iso.datetime({offset: true, error: 'an ISO 8601 time with its offset, e.g. 2026-12-06T10:00:00Z'}).optional(),
    action: z
      .string({error: 'an upper-case word: CREATE, UPDATE, DELETE, VIEW, LOGIN, LOGIN_FAILED, LOGOUT, EXPORT or your own'})
      .regex(ACTION, 'an upper-case word of at most 64 letters, digits and _ (CREATE, LOGIN_FAILED, or your own)'),
    actor: z
      .union([idText('actor'), z.strictObject({id: idText('actor.id').optional(), name: text(EVENT_LIMITS.name, 'actor.name').optional()})])
      .optional(),
    target: z.strictObject({type: text(EVENT_LIMITS.name, 'target.type'), id: idText('target.id').optional()}).optional(),
    changes: z
      .record(
        z.string().max(EVENT_LIMITS.name),
        z.strictObject({before: z.unknown().optional(), after: z.unknown().optional()}, {error: 'an object {"before": …, "after": …}'}),
        {
          error: 'an object of field → {"before": …, "after": …}',
        },
      )
      .optional(),
    reason: text(EVENT_LIMITS.reason, 'reason').optional(),
    severity: z.enum(SEVERITIES, {error: `one of ${SEVERITIES.join(', ')}`}).optional(),
    request_id: text(EVENT_LIMITS.id, 'request_id').optional(),
    ip: z
      .string()
      .refine((v) => net.isIP(v) !== 0, 'an IPv4 or IPv6 address')
      .optional(),
    instance: text(EVENT_LIMITS.name, 'instance').optional(),
    extra: json.optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.join(', ')}; accepted: ${FIELDS}`
        : `an object with an action (and ${FIELDS.replace('action, ', '')})`,
  },
)
export type EventInput = z.input<typeof eventSchema>

/** How deep a JSON value nests, without recursion (a hostile one may nest thousands deep); stops counting past `max`. */
export function depthOf(value: unknown, max: number): number {
  let deepest = 0
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length) {
    const [v, d] = stack.pop()!
    if (!v || typeof v !== 'object') continue
    if (d > deepest) deepest = d
    if (deepest > max) return deepest
    for (const child of Object.values(v)) if (child && typeof child === 'object') stack.push([child, d + 1])
  }
  return deepest
}

export type EventOptions = {masker: Masker; instance: string; now?: () => Date; mask?: Hooks['mask']}

/** A refusal that names the field and what is accepted. */
export class EventError extends Error {}

const describe = (error: z.ZodError) =>
  error.issues
    .map((i) => {
      const where = i.path.join('.')
      // a message that already names its field says it once
      return where && !i.message.startsWith(where) ? `${where}: ${i.message}` : i.message
    })
    .join('; ')

/** Validates one event and returns its record as the journal line every store keeps; throws EventError naming what is wrong. */
export function eventLine(input: unknown, o: EventOptions): {id: string; line: string} {
  const parsed = eventSchema.safeParse(input)
  if (!parsed.success) throw new EventError(describe(parsed.error))
  const e = parsed.data
  for (const key of ['changes', 'extra'] as const)
    if (e[key] !== undefined && depthOf(e[key], EVENT_LIMITS.depth) > EVENT_LIMITS.depth)
      throw new EventError(`${key}: nests deeper than ${EVENT_LIMITS.depth} levels`)
  // PostgreSQL keys a record by (id, created_at): an event sent again must come with the same time to be kept once
  const v7 = e.id !== undefined && e.id[14] === '7' ? new Date(parseInt(e.id.replace(/-/g, '').slice(0, 12), 16)) : undefined
  if (e.id !== undefined && !e.created_at && !v7)
    throw new EventError(
      'created_at: needed with an id that is not a UUIDv7 (an event sent again is kept once when it has the same id and time)',
    )
  const created = e.created_at ? new Date(e.created_at) : (v7 ?? o.now?.() ?? new Date())
  const year = created.getUTCFullYear()
  if (year < 1970 || year > 9999) throw new EventError('created_at: a time between 1970 and 9999')
  const actor = typeof e.actor === 'string' ? {id: e.actor, name: undefined} : e.actor
  const id = e.id?.toLowerCase() ?? newRecordId(created.getTime())
  const record: Record<string, unknown> = {
    log_type: 'event',
    id,
    created_at: created.toISOString(),
    action: e.action,
    actor_id: actor?.id ?? null,
    actor_name: actor?.name ?? null,
    target_type: e.target?.type ?? null,
    target_id: e.target?.id ?? null,
    changes: e.changes ? maskChanges(e.changes, o.masker) : null,
    reason: e.reason === undefined ? null : o.masker.maskText(e.reason),
    severity: e.severity ?? null,
    request_id: e.request_id ?? null,
    ip: e.ip ?? null,
    instance: e.instance ?? o.instance,
    extra: e.extra ? o.masker.maskJson(e.extra) : null,
  }
  // the config's mask() sees events as it sees request records
  return {id, line: maskedLine(record, o.mask)}
}

/**
 * Each changed field's before and after, masked: a sensitive field (password, token, ...) keeps that it
 * changed, never its values; any other field's values get the rules bodies get.
 */
function maskChanges(changes: Record<string, {before?: unknown; after?: unknown}>, masker: Masker): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [field, change] of Object.entries(changes)) {
    out[field] = masker.isSensitiveKey(field)
      ? {before: change.before === undefined ? undefined : MASK, after: change.after === undefined ? undefined : MASK}
      : masker.maskJson({before: change.before, after: change.after})
  }
  return out
}
