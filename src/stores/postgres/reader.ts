import type {Filter} from '../../filters/parse.js'
import {type LogType, type QueryOptions, type Row, columnsOf} from '../source.js'
import type {Db} from './db.js'
import {LOG_TYPES} from '../log-types.js'
import {copyExport, selectById, selectRecords} from './sql/reader.js'

export async function queryRecords(db: Db, f: Filter, options: QueryOptions & {columns?: string[]}): Promise<Row[]> {
  const q = selectRecords(f, options.columns ?? columnsOf(f.logType), options.limit, options.order, options.after)
  return (await db.query(q)).rows
}

/** One record by id, from any table (one that a pending migration has not made yet holds none). */
export async function getRecord(db: Db, id: string): Promise<{logType: LogType; record: Row} | undefined> {
  for (const logType of LOG_TYPES) {
    const {rows} = await db.query(selectById(logType, columnsOf(logType), id)).catch((error: {code?: string}) => {
      if (error.code === '42P01') return {rows: []}
      throw error
    })
    if (rows[0]) return {logType, record: rows[0]}
  }
  return undefined
}

/** Stores the filter's values for COPY (which takes no bind parameters) and returns the COPY statement. */
export async function prepareCopyExport(db: Db, f: Filter, columns: string[], format: 'csv' | 'ndjson'): Promise<string> {
  const {setup, copy} = copyExport(f, columns, format)
  for (const q of setup) await db.query(q)
  return copy
}
