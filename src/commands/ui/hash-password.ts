import {BaseCommand} from '../../base-command.js'
import {usageError} from '../../errors.js'
import {hashPassword} from '../../ui/auth.js'

export default class UiHashPassword extends BaseCommand<typeof UiHashPassword> {
  static summary = "Print the scrypt hash of a viewer user's password, for uiUsers (NAME:HASH)."
  static description =
    'Reads the password from stdin (never from the command line, where other users of the host could see it): ' +
    'the first line, without its line end. Asks for it when stdin is a terminal.'
  static examples = [
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %>',
    'echo "alice:$(<%= config.bin %> <%= command.id %> < alice.pw)"',
  ]
  static flags = {}

  async run(): Promise<{hash: string}> {
    let password: string
    if (process.stdin.isTTY) {
      const {password: ask} = await import('@inquirer/prompts')
      password = await ask({message: 'Password', mask: '*'})
    } else {
      const chunks: Buffer[] = []
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
      password = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]
    }
    if (password.length < 8) throw usageError('The password is refused: at least 8 characters are accepted')
    if (password.length > 1024) throw usageError('The password is refused: at most 1024 characters are accepted')
    const hash = await hashPassword(password)
    this.log(hash)
    return {hash}
  }
}
