/** The server's clock as the terminal sees it: /api/v1/meta's server_time corrects the local clock
 * (offset measured at the midpoint of the request). */
export function serverOffset(serverTimeIso: string, sentAt: number, receivedAt: number): number {
  const server = Date.parse(serverTimeIso);
  if (Number.isNaN(server)) return 0;
  return Math.round(server - (sentAt + receivedAt) / 2);
}

/** Whether the market is open at `now`, from the meta's session (the one under way, else the
 * next): open inside [opens_at, closes_at). Past closes_at it is closed until meta is re-read. */
export function marketOpenAt(now: number, market: { open: boolean; opens_at: string | null; closes_at: string | null }): boolean {
  const opens = market.opens_at ? Date.parse(market.opens_at) : NaN;
  const closes = market.closes_at ? Date.parse(market.closes_at) : NaN;
  if (Number.isNaN(opens) || Number.isNaN(closes)) return market.open;
  return now >= opens && now < closes;
}
