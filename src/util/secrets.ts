import {createHash, timingSafeEqual} from 'node:crypto'

const digest = (s: string) => createHash('sha256').update(s).digest()

/**
 * Whether a secret someone sent equals ours, in constant time: compared as digests, so neither the
 * length nor the bytes of ours leak through timing. Undefined or empty on either side is never equal.
 */
export function sameSecret(sent: string | undefined, ours: string | undefined): boolean {
  if (!sent || !ours) return false
  return timingSafeEqual(digest(sent), digest(ours))
}
