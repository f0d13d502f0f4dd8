import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {resolveConfig} from '../../src/config/resolve.js'
import type {SettingKey} from '../../src/config/schema.js'

describe('resolveConfig: where each value came from (for doctor)', () => {
  it('names the flag, the environment variable (an alias too), the config file, or defaults', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-sources-'))
    const file = path.join(cwd, 'audit-logs.config.json')
    writeFileSync(file, JSON.stringify({premake: 5, logDir: 'from-file'}))
    const sources: Partial<Record<SettingKey, string>> = {}
    const config = await resolveConfig({
      cwd,
      env: {AUDIT_LOGS_PARTITION_INTERVAL: 'week', GUNICORN_LOG_DIR: 'from-env'},
      flags: {databaseUrl: 'postgres://u:p4ssw0rd@127.0.0.1:5432/x'},
      sources,
    })
    expect(config.logDir).to.equal('from-env')
    expect(sources).to.include({
      databaseUrl: 'command-line flag --database-url',
      partitionInterval: 'environment AUDIT_LOGS_PARTITION_INTERVAL',
      logDir: 'environment GUNICORN_LOG_DIR',
      premake: `config file ${file}`,
      requestRetentionDays: 'defaults',
    })
  })
})
