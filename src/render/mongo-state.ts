import type {MongoState} from '../stores/mongo/status.js'
import {formatBytes} from '../util/bytes.js'
import {renderTable} from './table.js'

/**
 * MongoDB's state as `migrate status` and `partitions list` show it: it has
 * neither migrations nor partitions, so what applies is what setup-db
 * makes (collections, validators, indexes, a TTL) and what cleanup removes.
 */
export function renderMongoState(state: MongoState, what: 'migrations' | 'partitions'): string {
  const head =
    what === 'migrations'
      ? `MongoDB ${state.database} (${state.server}) has no migrations: setup-db creates its collections, validators and indexes.`
      : `MongoDB ${state.database} (${state.server}) has no partitions: cleanup deletes documents past the retention (or a TTL index from setup-db --mongo-ttl expires them).`
  const table = renderTable(
    ['collection', 'documents', 'size', 'validator', 'indexes', 'TTL'],
    state.collections.map((c) => [
      c.collection,
      c.exists ? c.documents : 'missing',
      c.bytes === null ? '' : formatBytes(c.bytes),
      c.validator,
      c.indexes.every((i) => i.state === 'present')
        ? `all ${c.indexes.length} present`
        : `missing: ${c.indexes
            .filter((i) => i.state === 'missing')
            .map((i) => i.name)
            .join(', ')}`,
      c.ttl ? `${c.ttl.days} days (${c.ttl.index})` : 'none',
    ]),
  )
  const advice = state.missing > 0 ? `\n${state.missing} item(s) missing: run \`audit-logs setup-db --store mongo\`.` : ''
  return `${head}\n${table}${advice}`
}
