/** When to refresh the access token: a margin before expiry of a fifth of its lifetime, between
 * 5 s and 60 s (now, if already inside the margin). */
export function refreshDelay(expiresAt: number, issuedAt: number | null, now: number): number {
  const lifetime = issuedAt ? Math.max(0, expiresAt - issuedAt) : 15 * 60_000;
  const margin = Math.min(60_000, Math.max(5_000, lifetime / 5));
  return Math.max(0, expiresAt - margin - now);
}
