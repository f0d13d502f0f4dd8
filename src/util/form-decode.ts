/**
 * Decodes a URL query or form value (application/x-www-form-urlencoded: `+` is a
 * space). Text written by strangers may hold a malformed escape: it is then
 * returned as it came, never thrown.
 */
export function formDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return text
  }
}
