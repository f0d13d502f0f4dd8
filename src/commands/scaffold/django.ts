import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {type DjangoScaffold, writeDjangoApp} from '../../scaffold/django.js'

export default class ScaffoldDjango extends BaseCommand<typeof ScaffoldDjango> {
  static summary = 'Write the audit_logs_django app that sends a Django project’s audit events to `audit-logs run`.'
  static description =
    'Copies a small Django app (Django 4.2 and 5.2, no other dependency; its README.md says what it sends) into ' +
    'DIR/audit_logs_django: model changes with before/after, logins, logouts, failed logins, exports and system ' +
    'events, posted off the request path to the events endpoint that `audit-logs run` gives the app ' +
    '(AUDIT_LOGS_EVENTS_URL, AUDIT_LOGS_EVENTS_TOKEN). Refuses an existing app directory unless --force.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --dir src/backend',
    '<%= config.bin %> <%= command.id %> --dir src/backend --force --json',
  ]
  static flags = {
    dir: Flags.string({description: 'directory of the Django project (where manage.py is)', default: '.'}),
    force: Flags.boolean({description: 'replace the files of an existing audit_logs_django'}),
  }

  async run(): Promise<DjangoScaffold> {
    const result = writeDjangoApp(this.flags.dir, this.flags.force)
    this.log(`Wrote ${result.app}:`)
    for (const file of result.files) this.log(`  ${file}`)
    this.log('\nAdd to your settings:')
    this.log(`  ${result.settings.installedApps}`)
    this.log(`  ${result.settings.middleware}`)
    this.log('\nThen start the app under audit-logs, which gives it the events URL and token: audit-logs run -- gunicorn project.wsgi')
    return result
  }
}
