import type pg from 'pg'

/** What the stores need of a connection: a client, a pool client, or a recorder of SQL for --dry-run. */
export type Db = Pick<pg.ClientBase, 'query'>

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
