/** HAR 1.2 entries from request records (pure), for a browser's devtools. */
type Row = Record<string, unknown>

const pairs = (obj: unknown) =>
  Object.entries((obj as Record<string, unknown>) ?? {}).flatMap(([name, v]) =>
    (Array.isArray(v) ? v : [v]).map((value) => ({name, value: String(value)})),
  )

export function harEntry(r: Row): object {
  const reqHeaders = (r.request_headers as Record<string, unknown>) ?? {}
  const resHeaders = (r.response_headers as Record<string, unknown>) ?? {}
  const query = pairs(r.query)
  const qs = query.length ? '?' + query.map((q) => `${encodeURIComponent(q.name)}=${encodeURIComponent(q.value)}`).join('&') : ''
  const created = r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at)
  const duration = Number(r.duration_ms ?? 0)
  const entry: Record<string, unknown> = {
    startedDateTime: created,
    time: duration,
    request: {
      method: r.method,
      url: `${r.scheme ?? 'http'}://${r.host ?? 'unknown'}${r.path}${qs}`,
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers: pairs(reqHeaders),
      queryString: query,
      headersSize: -1,
      bodySize: Number(r.request_body_size ?? 0),
      ...(typeof r.request_body === 'string' ? {postData: {mimeType: String(reqHeaders['content-type'] ?? ''), text: r.request_body}} : {}),
    },
    response: {
      status: Number(r.status_code ?? 0),
      statusText: '',
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers: pairs(resHeaders),
      content: {
        size: Number(r.response_body_size ?? 0),
        mimeType: String(resHeaders['content-type'] ?? ''),
        text: typeof r.response_body === 'string' ? r.response_body : '',
      },
      redirectURL: String(resHeaders.location ?? ''),
      headersSize: -1,
      bodySize: Number(r.response_body_size ?? 0),
    },
    cache: {},
    timings: {send: 0, wait: duration, receive: 0},
    _id: r.id,
    _user: r.user_id ?? null,
    _flags: r.flags ?? [],
  }
  return entry
}

export const harHead = (version: string) =>
  `{"log":{"version":"1.2","creator":{"name":"audit-logs","version":${JSON.stringify(version)}},"entries":[`
export const HAR_TAIL = ']}}\n'
