// The least a Node reverse proxy does (issue 16, "in front of the app its users run"): node:http in, node:http out
// with a keep-alive agent, headers passed as they are, bodies piped, nothing recorded. Not the product: it measures
// what any Node proxy costs in front of an app on this machine, so that `run`'s figures can be read against it.
//   node bench/plain-proxy.mjs <listen port> <upstream port | unix socket path>
// e.g. gunicorn -w 2 -k sync -b 127.0.0.1:18001 benchapp.wsgi (bench/django), then
//   node bench/plain-proxy.mjs 18002 18001 & wrk -t1 -c50 -d8s http://127.0.0.1:18002/small
import http from 'node:http'

const [port, target] = process.argv.slice(2)
const agent = new http.Agent({keepAlive: true, maxSockets: 512})
const upstream = target.startsWith('/') ? {socketPath: target} : {host: '127.0.0.1', port: Number(target)}
http
  .createServer((req, res) => {
    const up = http.request({...upstream, method: req.method, path: req.url, headers: req.headers, agent}, (r) => {
      res.writeHead(r.statusCode, r.headers)
      r.pipe(res)
    })
    up.on('error', () => {
      res.writeHead(502)
      res.end()
    })
    req.pipe(up)
  })
  .listen(Number(port), '127.0.0.1')
