import net from 'node:net'
import os from 'node:os'
import {type ResultPromise, execa} from 'execa'
import {AuditLogsError, ExitCode} from '../errors.js'
import {freePort} from '../util/process.js'

function canConnect(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({port, host})
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

export type AppProcess = {
  port: number
  child: ResultPromise
  exited: Promise<number>
  /** Sends `signal` once (a later stop does not send it again) and waits; SIGKILL after `timeoutMs`. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<number>
  /** Sends SIGTERM now, without waiting: the app shuts down while the rest of run does. */
  terminate(): void
}

/**
 * Spawns the app with a free port in PORT and waits until it accepts
 * connections; fails clearly if it exits first or never listens.
 */
export async function spawnApp(
  command: string[],
  options: {
    readyTimeoutMs?: number
    log: (m: string) => void
    env?: Record<string, string>
    /** the app's output, as it comes: it still goes to this process's stdout and stderr, unchanged */
    output?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void
  },
): Promise<AppProcess> {
  const port = await freePort()
  const child = execa(command[0], command.slice(1), {
    env: {...options.env, PORT: String(port)},
    extendEnv: true,
    stdio: options.output ? ['inherit', 'pipe', 'pipe'] : 'inherit',
    buffer: false, // the output is passed on, never kept
    reject: false,
  })
  const {output} = options
  if (output) {
    // the bytes go on as they came (pipe: a terminal that does not keep up slows the app, as it would without us);
    // a reader that goes away (`run … | head`, a log collector restarting) ends the passing on, never the recording
    for (const [from, to] of [
      [child.stdout!, process.stdout],
      [child.stderr!, process.stderr],
    ] as const) {
      from.pipe(to, {end: false})
      to.once('error', () => {
        from.unpipe(to)
        from.resume()
      })
    }
    child.stdout!.on('data', (c: Buffer) => output('stdout', c))
    child.stderr!.on('data', (c: Buffer) => output('stderr', c))
  }
  let exitCode: number | undefined
  let terminated = false
  const exited = child.then(
    (r) => (exitCode = r.exitCode ?? (r.signal ? 128 + (os.constants.signals[r.signal as NodeJS.Signals] ?? 0) : 1)),
  )
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject))
  spawnError.catch(() => {})
  const end = Date.now() + (options.readyTimeoutMs ?? 30_000)
  for (;;) {
    if (exitCode !== undefined) {
      throw new AuditLogsError(
        `The app (${command.join(' ')}) exited with code ${exitCode} before it accepted connections on PORT=${port}.`,
        {exit: ExitCode.failure},
      )
    }
    const failed = await Promise.race([
      spawnError.then(
        () => undefined,
        (e: Error) => e,
      ),
      new Promise<undefined>((r) => setTimeout(r, 50, undefined)),
    ])
    if (failed) throw new AuditLogsError(`Could not start the app (${command.join(' ')}): ${failed.message}`, {exit: ExitCode.failure})
    if (await canConnect(port, '127.0.0.1')) break
    if (Date.now() > end) {
      child.kill('SIGTERM')
      throw new AuditLogsError(
        `The app (${command.join(' ')}) did not accept connections on PORT=${port} within ${Math.round((options.readyTimeoutMs ?? 30_000) / 1000)} s; does it listen on process.env.PORT?`,
        {exit: ExitCode.failure},
      )
    }
  }
  options.log(`app started (pid ${child.pid}) on 127.0.0.1:${port}`)
  return {
    port,
    child,
    exited,
    terminate() {
      if (exitCode === undefined && !terminated) child.kill('SIGTERM')
      terminated = true
    },
    async stop(signal, timeoutMs) {
      if (exitCode !== undefined) return exitCode
      if (!terminated || signal !== 'SIGTERM') child.kill(signal)
      terminated = true
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await exited
      clearTimeout(t)
      return code
    },
  }
}
