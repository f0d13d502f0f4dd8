import picomatch from 'picomatch'

/** Paths (prefix, or glob when it has * ? [ ), extensions and methods that get no request record. */
export class Exclusions {
  private readonly prefixes: string[]
  private readonly globs: Array<(p: string) => boolean>
  private readonly extensions: Set<string>
  private readonly methods: Set<string>

  constructor(options: {paths: string[]; extensions: string[]; methods: string[]}) {
    this.prefixes = options.paths.filter((p) => !/[*?[]/.test(p))
    this.globs = options.paths.filter((p) => /[*?[]/.test(p)).map((p) => picomatch(p, {dot: true}))
    this.extensions = new Set(options.extensions.map((e) => (e.startsWith('.') ? e : '.' + e).toLowerCase()))
    this.methods = new Set(options.methods.map((m) => m.toUpperCase()))
  }

  excludes(method: string, path: string): boolean {
    if (this.methods.has(method)) return true
    const dot = path.lastIndexOf('.')
    if (dot > path.lastIndexOf('/') && this.extensions.has(path.slice(dot).toLowerCase())) return true
    for (const prefix of this.prefixes) {
      // '/health/' also excludes '/health' itself
      if (path.startsWith(prefix) || (prefix.endsWith('/') && path === prefix.slice(0, -1))) return true
    }
    return this.globs.some((match) => match(path))
  }
}
