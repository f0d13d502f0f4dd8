// A tiny app for `audit-logs run -- node tiny-app.mjs`: listens on PORT; /exit?code=N exits with N.
import http from 'node:http'

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  if (url.pathname === '/exit') {
    res.end('bye')
    setTimeout(() => process.exit(Number(url.searchParams.get('code') ?? 0)), 50)
    return
  }
  res.writeHead(200, {'content-type': 'application/json'})
  res.end(JSON.stringify({port: process.env.PORT, path: req.url}))
})
server.listen(Number(process.env.PORT), '127.0.0.1')
process.on('SIGTERM', () => server.close(() => process.exit(0)))
