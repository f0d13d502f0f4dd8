import {BaseCommand} from '../../base-command.js'
import {renderEnvExample} from '../../scaffold/deploy/env.js'
import {type ScaffoldResult, emitOne, oneFileFlags} from '../../scaffold/deploy/output.js'

export default class ScaffoldEnv extends BaseCommand<typeof ScaffoldEnv> {
  static summary = 'Write .env.example: every environment variable, its default and meaning.'
  static description =
    'Generated from the configuration schema, so it lists every setting the program reads from the environment: ' +
    'each commented out with its default (uncomment what you set: the environment wins over the config file), ' +
    'secrets as empty placeholders, ' +
    "and the seeds' names (GUNICORN_*) that are read too. Refuses an existing file unless --force."
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --out deploy/audit-logs.env --force',
    '<%= config.bin %> <%= command.id %> --stdout',
  ]
  static flags = oneFileFlags('.env.example')

  async run(): Promise<ScaffoldResult> {
    return emitOne(this.flags, renderEnvExample(), 'scaffold env', (l) => this.log(l))
  }
}
