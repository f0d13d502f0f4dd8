import {generateKeyPairSync} from 'node:crypto'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {usageError} from '../../errors.js'
import {MODES} from '../../util/files.js'

export default class VerifyKeygen extends BaseCommand<typeof VerifyKeygen> {
  static summary = 'Make an Ed25519 key pair for signing integrity digests (integrityKey).'
  static description =
    'Writes the private key (PKCS#8 PEM, mode 0600) to --out and the public key (SPKI PEM) to --out with .pub.pem; ' +
    'the private key is never printed. Keep the public key where the database owner cannot change it: verify checks with it. ' +
    'The same as `openssl genpkey -algorithm ed25519 -out integrity.pem`.'
  static examples = ['<%= config.bin %> <%= command.id %> --out /etc/audit-logs/integrity.pem']
  static flags = {
    out: Flags.string({description: 'where the private key goes (refused when it exists)', required: true}),
  }

  async run(): Promise<{privateKey: string; publicKey: string}> {
    const out = this.flags.out
    const pub = out.replace(/\.pem$/, '') + '.pub.pem'
    for (const f of [out, pub]) if (existsSync(f)) throw usageError(`${f} exists: a key is never overwritten; give another --out`)
    // a missing directory is made (as /etc/audit-logs in the example), private to its owner: it holds the key
    mkdirSync(path.dirname(path.resolve(out)), {recursive: true, mode: MODES.privateDir})
    const {privateKey, publicKey} = generateKeyPairSync('ed25519')
    writeFileSync(out, privateKey.export({type: 'pkcs8', format: 'pem'}), {mode: 0o600, flag: 'wx'})
    writeFileSync(pub, publicKey.export({type: 'spki', format: 'pem'}), {mode: 0o644, flag: 'wx'})
    this.log(`private key: ${out} (integrityKey)\npublic key:  ${pub} (verify --public-key)`)
    return {privateKey: out, publicKey: pub}
  }
}
