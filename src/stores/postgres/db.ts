import type pg from 'pg'

/** What the stores need of a connection: a client, a pool client, or a recorder of SQL for --dry-run. */
export type Db = Pick<pg.ClientBase, 'query'> & {
  /** its queries may be sent at once (several connections behind it); one connection takes one at a time */
  parallel?: boolean
}

/** Runs the steps at once where `db` can, else one after the other (pg deprecates queries sent to a busy client). */
export async function each<T extends unknown[]>(db: Db, steps: {[K in keyof T]: () => Promise<T[K]>}): Promise<T> {
  if (db.parallel) return (await Promise.all(steps.map((s) => s()))) as T
  const out: unknown[] = []
  for (const s of steps) out.push(await s())
  return out as T
}

const READS = /^\s*(SELECT|WITH\s+\w+\s+AS\s*\(\s*SELECT)\b/i

/** Passes every statement through, and records the ones that change something (for --dry-run output). */
export function recordingDb(db: Db, log: string[]): Db {
  return {
    query: ((q: string | {text: string}, ...rest: unknown[]) => {
      const text = typeof q === 'string' ? q : q.text
      if (!READS.test(text) && !/^\s*(BEGIN|COMMIT|ROLLBACK|SET LOCAL ROLE|LOCK TABLE)/i.test(text))
        log.push(text.replace(/\s+/g, ' ').trim() + ';')
      return (db.query as (...a: unknown[]) => unknown)(q, ...rest)
    }) as Db['query'],
  }
}
