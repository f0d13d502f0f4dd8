// The trivial upstream of the capture benchmark: GET /small (small JSON), POST /post (2 KiB JSON in, 4 KiB JSON out).
import http from 'node:http'
import {ITEMS_4K as big, SMALL as small} from './bodies.mjs'
http
  .createServer((req, res) => {
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
  })
  .listen(Number(process.env.PORT), '127.0.0.1')
