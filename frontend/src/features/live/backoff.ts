/** Reconnect delays: exponential from `base`, capped at `max`, with "equal jitter" (half fixed,
 * half random) so many terminals dropped together do not reconnect in step. */
export interface BackoffOptions {
  base?: number;
  max?: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, { base = 500, max = 30_000, random = Math.random }: BackoffOptions = {}): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** What to do when the socket closes with `code`: 4401 is an auth failure (refresh, then
 * reconnect or log out), 1000 after our own close is final, anything else reconnects. */
export function closeAction(code: number, closedByUs: boolean): 'stop' | 'reauth' | 'reconnect' {
  if (closedByUs) return 'stop';
  if (code === 4401) return 'reauth';
  return 'reconnect';
}
