/** Quote an identifier for SQL. Used on names we choose or that the catalog or configuration gives, never on request data. */
export function quoteIdent(value: string): string {
  return '"' + value.replace(/"/g, '""') + '"'
}

/** Quote a literal for the few statements that take no parameters (CREATE ROLE ... PASSWORD). */
export function quoteLiteral(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'"
}
