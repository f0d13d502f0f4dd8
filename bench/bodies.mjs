// The capture benchmark's bodies, one definition for the app (upstream.mjs), the load (capture.ts) and
// the builder alone (builder.ts), so the builder benchmark measures the exchange the capture benchmark sends.

/** GET /small's answer. */
export const SMALL = JSON.stringify({ok: true, id: 42, name: 'small'})

const lines = []
for (let i = 0; JSON.stringify({order: {customer: 'c-1', lines}}).length < 2048 - 60; i++)
  lines.push({sku: `SKU-${1000 + i}`, qty: (i % 4) + 1, note: 'gift wrap'})
/** POST /post's request: about 2 KiB of JSON. */
export const ORDER_2K = JSON.stringify({order: {customer: 'c-1', lines}})

const items = []
for (let i = 0; JSON.stringify({ok: true, items}).length < 4096 - 80; i++)
  items.push({id: i, sku: `SKU-${1000 + i}`, name: `item ${i}`, price: i * 1.5, in_stock: i % 3 !== 0})
/** POST /post's answer: about 4 KiB of JSON. */
export const ITEMS_4K = JSON.stringify({ok: true, items})
