#!/usr/bin/env -S node --max-semi-space-size=1
// The small young generation is for `run`'s long-lived primary, which only supervises, counts and
// serves /metrics: V8's default grows it to 16 MB per semi-space at start and keeps it through a
// load (about 25 MB of resident memory). The workers set their own (see server/primary.ts).
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
