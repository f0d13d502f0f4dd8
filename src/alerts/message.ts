import type {AlertItem} from './conditions.js'

const STATE = {started: 'ALERT', ongoing: 'STILL', ended: 'RESOLVED'} as const

/** One line per alert, for people: `ALERT sink_failing (postgres): ...`. */
export const itemLine = (i: AlertItem) => `${STATE[i.state]} ${i.condition}${i.sink ? ` (${i.sink})` : ''}: ${i.text}`

/** The first line of a message: what the e-mail subject and the Slack text start with. */
export function headline(instance: string, items: AlertItem[]): string {
  const first = items[0]
  const more = items.length > 1 ? ` (+${items.length - 1} more)` : ''
  return `audit-logs on ${instance}: ${STATE[first.state]} ${first.condition}${first.sink ? ` (${first.sink})` : ''}${more}`
}

export const textBody = (instance: string, items: AlertItem[]) =>
  [headline(instance, items), '', ...items.map((i) => `- ${itemLine(i)} [since ${i.since}]`)].join('\n')

/**
 * The webhook's body. json: the alerts as data, with a text for people; slack: {"text": ...}, which
 * Slack's incoming webhooks and the compatible ones (Mattermost, Rocket.Chat, Discord's /slack) take.
 * Neither holds a secret or a record: the items carry state and counts only.
 */
export function webhookBody(format: 'json' | 'slack', instance: string, items: AlertItem[], sentAt: Date): string {
  if (format === 'slack') return JSON.stringify({text: textBody(instance, items)})
  return JSON.stringify({source: 'audit-logs', instance, sentAt: sentAt.toISOString(), text: textBody(instance, items), alerts: items})
}
