// The parts of `run`'s primary each start something and give back how to stop it; they are stopped in
// the reverse order of their start, all of them under one deadline.

/** When a shutdown must be over: a part that waits longer forces what is left (kills, terminates) at it. */
export type Deadline = {
  /** ms since the epoch */
  readonly at: number
  /** ms from now to the deadline, 0 once it passed */
  left(): number
  /** The deadline `ms` earlier (for a part that must leave time to the parts stopped after it). */
  sooner(ms: number): Deadline
}

export function deadlineAt(at: number): Deadline {
  return {at, left: () => Math.max(0, at - Date.now()), sooner: (ms) => deadlineAt(at - ms)}
}

export const deadlineIn = (ms: number): Deadline => deadlineAt(Date.now() + ms)

/** Whether `work` settled by the deadline (its failure counts as settled); it is not waited for past it. */
export function settledBy(work: Promise<unknown>, deadline: Deadline): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), deadline.left())
    const done = () => {
      clearTimeout(timer)
      resolve(true)
    }
    work.then(done, done)
  })
}

/** What starting a part gives back: it stops the part by the deadline. */
export type Stop = (deadline: Deadline) => Promise<void> | void

/**
 * The parts of a run, stopped in the reverse order of their start. Each one is stopped even when one
 * before it failed or overran (its failure is logged), and none is waited for past the deadline: a
 * part that does not stop by then is left to end on its own while the rest stop.
 */
export class Parts {
  private readonly started: Array<{name: string; stop: Stop}> = []

  constructor(private readonly log: (m: string) => void) {}

  /** Takes a started part (an object with stop, or its stop function) and returns it. */
  add<T extends {stop: Stop} | Stop | undefined>(name: string, part: T): T {
    if (part) this.started.push({name, stop: typeof part === 'function' ? part : (deadline) => part.stop(deadline)})
    return part
  }

  async stop(deadline: Deadline): Promise<void> {
    for (const {name, stop} of this.started.reverse()) {
      const stopping = Promise.resolve()
        .then(() => stop(deadline))
        .catch((error: Error) => this.log(`shutdown: ${error.message}`))
      if (!(await settledBy(stopping, deadline))) this.log(`shutdown: ${name} did not stop within the shutdown limit; the rest stops now`)
    }
    this.started.length = 0
  }
}
