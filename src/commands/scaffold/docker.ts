import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {dockerFiles} from '../../scaffold/deploy/docker.js'
import {type ScaffoldResult, dirFlags, emitMany} from '../../scaffold/deploy/output.js'
import {PACKAGE_ROOT} from '../../scaffold/deploy/paths.js'

export default class ScaffoldDocker extends BaseCommand<typeof ScaffoldDocker> {
  static summary = 'Write a Dockerfile for audit-logs and a compose file: the app, `run` in front of it, PostgreSQL.'
  static description =
    'Dockerfile: node:20-slim, built from the audit-logs source (the build context), production dependencies only, a ' +
    'user without privileges. compose.yaml: the app (--app-image), audit-logs run proxying to it and published on ' +
    '--port, PostgreSQL with a volume and a health check (not the embedded one), and setup-db as a one-shot service ' +
    'that runs before run. Passwords come from a .env next to compose.yaml. Refuses existing files unless --force.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --app-image registry.example.com/shop:1.4 --app-port 3000',
    '<%= config.bin %> <%= command.id %> --dir deploy --context ../audit-logs --port 8080',
  ]
  static flags = {
    ...dirFlags,
    'app-image': Flags.string({description: "the app's image", default: 'your-app:latest'}),
    'app-port': Flags.integer({description: 'port the app listens on in its container', default: 3000, min: 1, max: 65535}),
    port: Flags.integer({description: 'host port audit-logs is published on', default: 8000, min: 1, max: 65535}),
    context: Flags.string({
      description: 'build context: a checkout of the audit-logs repository [default: this installation]',
    }),
    'db-name': Flags.string({description: 'name of the audit database [default: the configured one, else audit_logs]'}),
  }

  async run(): Promise<ScaffoldResult> {
    const f = this.flags
    const dir = path.resolve(f.dir)
    const context = path.resolve(f.context ?? PACKAGE_ROOT)
    const c = await this.resolved()
    const dbName = f['db-name'] ?? c.dbName ?? 'audit_logs'
    const files = dockerFiles({
      appImage: f['app-image'],
      appPort: f['app-port'],
      port: f.port,
      // both relative, so the directory may be moved with the source next to it
      context: path.relative(dir, context) || '.',
      dockerfile: path.relative(context, path.join(dir, 'Dockerfile')),
      dbName,
    })
    return emitMany(f, files, 'scaffold docker', (l) => this.log(l))
  }
}
