// A tiny app to try audit-logs with: npx audit-logs run --bind 127.0.0.1:8000 -- node examples/app.mjs
// It listens on PORT (audit-logs picks a free one) and answers JSON; /login echoes what it was sent.
import http from 'node:http'

http
  .createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      res.writeHead(200, {'content-type': 'application/json', 'x-audit-user': req.url.startsWith('/me') ? 'user-42' : ''})
      res.end(JSON.stringify({ok: true, method: req.method, path: req.url, received: body}))
    })
  })
  .listen(Number(process.env.PORT ?? 3000), '127.0.0.1')
