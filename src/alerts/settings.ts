import {usageError} from '../errors.js'

/** The alert settings of `run`, as flat keys (alertWebhookUrl, ...); a config file may group them as `alerts: {webhookUrl, ...}`. */
export type AlertConfig = {
  alertWebhookUrl?: string
  alertWebhookFormat: 'json' | 'slack'
  alertSmtpUrl?: string
  alertEmailFrom?: string
  alertEmailTo: string[]
  alertSinkFailedMs: number
  alertJournalFillPercent: number
  alertDigestMinutes: number
  alertTimeoutMs: number
}

export type AlertSettings = {
  instance: string
  webhook?: {url: string; format: 'json' | 'slack'}
  email?: {smtpUrl: string; from?: string; to: string[]}
  sinkFailedMs: number
  journalFillPercent: number
  digestMs: number
  timeoutMs: number
}

/** What `run` alerts with, or undefined when no channel is configured; e-mail settings that do not go together are refused (exit 2). */
export function alertSettings(config: AlertConfig, instance: string): AlertSettings | undefined {
  if (config.alertSmtpUrl && config.alertEmailTo.length === 0)
    throw usageError('alertSmtpUrl is set but alertEmailTo is empty: the alert e-mails would go to nobody', [
      'Set alertEmailTo (AUDIT_LOGS_ALERT_EMAIL_TO), e.g. ops@example.com,security@example.com',
    ])
  if (!config.alertSmtpUrl && (config.alertEmailTo.length > 0 || config.alertEmailFrom))
    throw usageError('alertEmailTo / alertEmailFrom are set but alertSmtpUrl is not: no server to send the alert e-mails through', [
      'Set alertSmtpUrl (AUDIT_LOGS_ALERT_SMTP_URL), e.g. smtp://user:password@mail.example.com:587',
    ])
  if (!config.alertWebhookUrl && !config.alertSmtpUrl) return undefined
  return {
    instance,
    webhook: config.alertWebhookUrl ? {url: config.alertWebhookUrl, format: config.alertWebhookFormat} : undefined,
    email: config.alertSmtpUrl ? {smtpUrl: config.alertSmtpUrl, from: config.alertEmailFrom, to: config.alertEmailTo} : undefined,
    sinkFailedMs: config.alertSinkFailedMs,
    journalFillPercent: config.alertJournalFillPercent,
    digestMs: Math.round(config.alertDigestMinutes * 60_000),
    timeoutMs: config.alertTimeoutMs,
  }
}

/**
 * A config file's `alerts: {webhookUrl, smtpUrl, emailTo, ...}` as the flat keys it stands for
 * (alertWebhookUrl, alertSmtpUrl, alertEmailTo, ...), each with the name a message gives it
 * (alerts.webhookUrl). An unknown key, or one also given flat, is refused.
 */
export function alertsFromFile(
  value: unknown,
  file: string,
  settingKeys: string[],
  flat: Record<string, unknown>,
): Array<{key: string; name: string; value: unknown}> {
  const accepted = settingKeys.filter((k) => /^alert[A-Z]/.test(k)).map((k) => k[5].toLowerCase() + k.slice(6))
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw usageError(`"alerts" in ${file} is not an object. Accepted: {${accepted.join(', ')}}`)
  return Object.entries(value).map(([sub, v]) => {
    const key = `alert${sub[0]?.toUpperCase() ?? ''}${sub.slice(1)}`
    if (!accepted.includes(sub)) throw usageError(`Unknown key "alerts.${sub}" in ${file}. Accepted keys of alerts: ${accepted.join(', ')}`)
    if (flat[key] !== undefined) throw usageError(`${file} sets both alerts.${sub} and ${key}: keep one`)
    return {key, name: `alerts.${sub}`, value: v}
  })
}
