/** A statement and its bind parameters: what every builder in this directory returns. User text only ever goes in `values`. */
export type Query = {text: string; values?: unknown[]}
