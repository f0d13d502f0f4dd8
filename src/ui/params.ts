import {FILTER_FLAGS, type Filter, type FilterInput, parseFilter} from '../filters/parse.js'
import {LOG_TYPE, LOG_TYPES, type LogType, type FilterKey} from '../stores/log-types.js'
import {DEFAULT_COLUMNS} from '../render/records.js'
import {type Cursor, columnsOf, positionOf} from '../stores/source.js'

/** The filter fields of the query string: the CLI's flag names, each taking the CLI's expression. */
const FIELD_INPUT: Record<string, keyof FilterInput> = {
  status: 'status',
  method: 'method',
  path: 'path',
  user: 'user',
  ip: 'ip',
  since: 'since',
  until: 'until',
  'min-duration': 'minDuration',
  'max-duration': 'maxDuration',
  flag: 'flag',
  search: 'search',
  'request-id': 'requestId',
  action: 'action',
  actor: 'actor',
  target: 'target',
  severity: 'severity',
}

export type Field = {name: string; value: string; error?: string}

/** A page's view of the records: a type, its filter (as typed, and parsed), columns, position. */
export type View = {
  logType: LogType
  fields: Field[]
  /** undefined when a field is wrong: nothing is queried, the errors are shown beside their fields */
  filter?: Filter
  error?: string
  columns: string[]
  after?: {created_at: string; id: string}
  before?: {created_at: string; id: string}
  limit: number
}

export const PAGE_SIZES = [25, 50, 100, 200]

/** The flag names a type's filter bar shows, in the CLI's order. */
export const fieldsOf = (t: LogType): string[] =>
  LOG_TYPE[t].filters.map((k: FilterKey) => FILTER_FLAGS[k]).filter((name) => name in FIELD_INPUT)

const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)_([0-9a-f-]{36})$/i

export const cursorText = (c: {created_at: string; id: string}) => `${c.created_at}_${c.id}`
function parseCursor(text: string | null): Cursor | undefined {
  if (!text) return undefined
  const m = CURSOR.exec(text)
  const cursor = m ? {created_at: m[1], id: m[2]} : undefined
  try {
    if (cursor) positionOf(cursor) // the stores' own check of a position
  } catch {
    return badCursor()
  }
  return cursor ?? badCursor()
}
const badCursor = (): never => {
  throw new Error('the page position in the address is not one this viewer made; start from the first page')
}

/**
 * Reads a page's address: `?type=request&status=5xx&path=/api/*&cols=…&after=…`.
 * Each field goes through the CLI's parser on its own, so each error is shown
 * beside the field it belongs to, worded as the CLI words it.
 */
export function readView(params: URLSearchParams, typeInPath?: string, now = new Date()): View {
  const raw = typeInPath ?? params.get('type') ?? 'request'
  const logType = (LOG_TYPES as readonly string[]).includes(raw) ? (raw as LogType) : 'request'
  const fields: Field[] = fieldsOf(logType).map((name) => ({name, value: params.get(name)?.trim() ?? ''}))
  const input: FilterInput = {logType}
  for (const f of fields) {
    if (!f.value) continue
    try {
      parseFilter({logType, [FIELD_INPUT[f.name]]: f.value}, now)
      input[FIELD_INPUT[f.name]] = f.value
    } catch (error) {
      f.error = (error as Error).message
    }
  }
  const view: View = {
    logType,
    fields,
    columns: columnsFrom(logType, params.get('cols') ?? (params.getAll('col').join(',') || null)),
    limit: limitFrom(params.get('limit')),
  }
  if (raw !== logType) {
    view.error = `There are no "${raw}" logs; these are: ${LOG_TYPES.join(', ')}`
    return view
  }
  if (fields.some((f) => f.error)) return view
  try {
    view.filter = parseFilter(input, now) // what only the whole can refuse (--since after --until)
    view.after = parseCursor(params.get('after'))
    view.before = view.after ? undefined : parseCursor(params.get('before'))
  } catch (error) {
    view.filter = undefined
    view.error = (error as Error).message
  }
  return view
}

function columnsFrom(t: LogType, text: string | null): string[] {
  if (!text) return DEFAULT_COLUMNS[t]
  const all = columnsOf(t)
  const picked = text.split(',').filter((c) => all.includes(c))
  return picked.length ? [...new Set(picked)] : DEFAULT_COLUMNS[t]
}

function limitFrom(text: string | null): number {
  const n = Number(text)
  return PAGE_SIZES.includes(n) ? n : 50
}

/** The address of the same view with some parameters changed (undefined removes one); values are the query string's, encoded by URLSearchParams. */
export function viewHref(path: string, view: View, changes: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams()
  for (const f of view.fields) if (f.value) q.set(f.name, f.value)
  if (view.columns.join(',') !== DEFAULT_COLUMNS[view.logType].join(',')) q.set('cols', view.columns.join(','))
  if (view.limit !== 50) q.set('limit', String(view.limit))
  for (const [k, v] of Object.entries(changes))
    if (v === undefined) q.delete(k)
    else q.set(k, v)
  const s = q.toString()
  return s ? `${path}?${s}` : path
}

/** The filter's fields only, for the links between list, dashboard, tail and export. */
export function filterQuery(view: View, extra: Record<string, string> = {}, options: {withType?: boolean} = {}): string {
  const q = new URLSearchParams()
  if (options.withType !== false) q.set('type', view.logType)
  for (const f of view.fields) if (f.value) q.set(f.name, f.value)
  for (const [k, v] of Object.entries(extra)) q.set(k, v)
  return q.toString()
}
