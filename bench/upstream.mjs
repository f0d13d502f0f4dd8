// The trivial upstream of the capture benchmark: GET /small (small JSON), POST /post (2 KiB JSON in, 4 KiB JSON out).
import http from 'node:http'

const small = JSON.stringify({ok: true, id: 42, name: 'small'})
const items = []
let big = ''
for (let i = 0; JSON.stringify({ok: true, items}).length < 4096 - 80; i++) items.push({id: i, sku: `SKU-${1000 + i}`, name: `item ${i}`, price: i * 1.5, in_stock: i % 3 !== 0})
big = JSON.stringify({ok: true, items})
http.createServer((req, res) => {
  if (req.method === 'POST') {
    req.resume()
    req.on('end', () => {
      res.writeHead(200, {'content-type': 'application/json', 'content-length': Buffer.byteLength(big)})
      res.end(big)
    })
    return
  }
  res.writeHead(200, {'content-type': 'application/json', 'content-length': Buffer.byteLength(small)})
  res.end(small)
}).listen(Number(process.env.PORT), '127.0.0.1')
