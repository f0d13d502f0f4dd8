/**
 * Modes of what audit-logs writes. Records hold IPs, user ids, headers and bodies (masked, still personal
 * data): the journal, checkpoints and dead letters are the writer's alone; the JSONL files and exports
 * are readable by its group too (a log shipper), by no one else. The umask can only narrow them.
 */
export const MODES = {privateDir: 0o700, privateFile: 0o600, sharedDir: 0o750, sharedFile: 0o640} as const
