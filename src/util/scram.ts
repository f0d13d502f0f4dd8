import {createHash, createHmac, pbkdf2Sync, randomBytes} from 'node:crypto'

/**
 * A SCRAM-SHA-256 verifier, as PostgreSQL stores it. Sending the verifier
 * instead of the password keeps the plain password out of the server's
 * statement log (what psql's \password does).
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16)
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

export const generatePassword = () => randomBytes(18).toString('base64url')
