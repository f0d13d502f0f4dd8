import type {Query} from './query.js'
import {quoteIdent} from './quote.js'

/** Act as `role` until the transaction ends (so what is created belongs to it). */
export const setLocalRole = (role: string): Query => ({text: `SET LOCAL ROLE ${quoteIdent(role)}`})

/** The process id of the backend serving this connection. */
export const backendPid = (): Query => ({text: 'SELECT pg_backend_pid() AS pid'})
