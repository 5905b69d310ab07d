export function WatchlistPanel() {
  return <div data-testid="watchlist" className="p-2 text-muted">Watchlist</div>;
}
