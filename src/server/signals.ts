import type {AppProcess} from './app-process.js'
import {type Deadline, deadlineIn} from './lifecycle.js'

/** How `run` ends: a signal, or the app's exit; and the one deadline of its shutdown. */
export type Shutdown = {
  /** A SIGINT or SIGTERM came, or the shutdown began: a worker that dies now is not replaced. */
  readonly stopping: boolean
  /**
   * Until the run is to end: resolves with its exit code, 0 on a signal (one that came while it
   * started too), the app's on its exit. Meanwhile SIGHUP calls onHangup.
   */
  running(options: {app?: AppProcess; onHangup: () => void}): Promise<number>
  /** Begins the shutdown (once): its deadline, the shutdown limit from now. */
  begin(): Deadline
  /** Removes the signal listeners: from then on a signal ends the process again. */
  stop(): void
}

/**
 * SIGINT/SIGTERM from here on stop gracefully, one that comes while starting too (once started). A
 * signal during the shutdown does not cut it short: `timeout`, systemd and a terminal may signal the
 * primary and its process group both, and the second one used to kill the primary before the journal
 * was flushed and the sinks drained. The shutdown takes at most `limitMs`.
 */
export function watchSignals(log: (m: string) => void, limitMs: number): Shutdown {
  let stopping = false
  let signalled = false
  let deadline: Deadline | undefined
  let stopped: (code: number) => void = () => {}
  const onSignal = (signal: NodeJS.Signals) => {
    const left = Math.ceil((deadline?.left() ?? limitMs) / 1000)
    if (signalled)
      return log(`${signal}: already shutting down (at most ${left} s more; SIGKILL stops at once, the journal keeps what the sinks lack)`)
    signalled = true
    stopping = true
    log(`${signal}: shutting down (in-flight requests finish, the journal is flushed)`)
    stopped(0)
  }
  let onHangup: (() => void) | undefined
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    get stopping() {
      return stopping
    },
    running: ({app, onHangup: reopen}) =>
      new Promise<number>((resolve) => {
        if (signalled) return resolve(0)
        stopped = resolve
        onHangup = () => {
          log('SIGHUP: reopening log files')
          reopen()
        }
        process.on('SIGHUP', onHangup)
        app?.exited.then((code) => {
          if (stopping) return
          log(`the app exited with code ${code}; shutting down`)
          resolve(code)
        })
      }),
    begin() {
      stopping = true
      deadline ??= deadlineIn(limitMs)
      return deadline
    },
    stop() {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      if (onHangup) process.off('SIGHUP', onHangup)
      stopped = () => {}
    },
  }
}
