import Table from 'cli-table3'

/** A plain table: no colour codes (cli-table3 adds them even off a TTY unless told not to). */
export function renderTable(head: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const table = new Table({head, style: {head: [], border: [], compact: true}})
  for (const row of rows) table.push(row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))))
  return table.toString()
}
