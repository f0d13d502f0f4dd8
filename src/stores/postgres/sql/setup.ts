import {quoteIdent, quoteLiteral} from './quote.js'
import type {Query} from './query.js'

export const databaseExists = (name: string): Query => ({text: 'SELECT 1 FROM pg_database WHERE datname = $1', values: [name]})
export const roleExists = (name: string): Query => ({text: 'SELECT 1 FROM pg_roles WHERE rolname = $1', values: [name]})

/** `verifier` is a SCRAM verifier, never the plain password; `shown` is what --dry-run prints. */
export const createRole = (name: string, verifier: string): Query => ({
  text: `CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD ${quoteLiteral(verifier)}`,
})

export const grantRoleToCurrentUser = (name: string): Query => ({text: `GRANT ${quoteIdent(name)} TO CURRENT_USER`})

export const isMember = (role: string): Query => ({text: `SELECT pg_has_role(current_user, $1, 'MEMBER') AS member`, values: [role]})

export const createDatabase = (name: string, owner: string): Query => ({
  text: `CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)} ENCODING 'UTF8' TEMPLATE template0`,
})

/** Least privilege: the writer may only INSERT (no temporary tables: it writes a batch in one statement), the reader only SELECT. */
export const grants = (db: string, roles: {owner: string; writer: string; reader: string}, tables: string[]): Query[] => {
  const list = tables.map(quoteIdent).join(', ')
  return [
    `REVOKE ALL ON DATABASE ${quoteIdent(db)} FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(roles.writer)}`,
    // the writer's COPY into a staging table needed TEMPORARY until its batches became one statement
    `REVOKE TEMPORARY ON DATABASE ${quoteIdent(db)} FROM ${quoteIdent(roles.writer)}`,
    // TEMPORARY: an export's COPY reads its filter values from a temporary table (sql/reader.ts copyExport)
    `GRANT CONNECT, TEMPORARY ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(roles.reader)}`,
    `GRANT ALL ON DATABASE ${quoteIdent(db)} TO ${quoteIdent(roles.owner)}`,
    `GRANT USAGE ON SCHEMA public TO ${quoteIdent(roles.writer)}, ${quoteIdent(roles.reader)}`,
    `GRANT INSERT ON ${list} TO ${quoteIdent(roles.writer)}`,
    `GRANT SELECT ON ${list} TO ${quoteIdent(roles.reader)}`,
    // the integrity chain (integrity.ts): the writer adds batches and digests and reads its chain's head
    // (SELECT on the batches, never on records); the reader verifies
    `GRANT INSERT, SELECT ON integrity_batches TO ${quoteIdent(roles.writer)}`,
    `GRANT INSERT ON integrity_digests TO ${quoteIdent(roles.writer)}`,
    `GRANT SELECT ON integrity_batches, integrity_digests, integrity_retention TO ${quoteIdent(roles.reader)}`,
    // where each chain starts after pruning (migration 0007): verify reads it
    `GRANT SELECT ON integrity_pruned TO ${quoteIdent(roles.reader)}`,
  ].map((text) => ({text}))
}

/** A database privilege of a role (CONNECT, TEMPORARY). */
export const hasDatabasePrivilege = (role: string, db: string, privilege: string): Query => ({
  text: 'SELECT has_database_privilege($1, $2, $3) AS ok',
  values: [role, db, privilege],
})

/** Privileges present on a table for a role, for telling "already granted" from "to do". */
export const hasTablePrivilege = (role: string, table: string, privilege: string): Query => ({
  text: 'SELECT has_table_privilege($1, $2, $3) AS ok',
  values: [role, table, privilege],
})
