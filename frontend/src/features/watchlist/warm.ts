/** The first live price, soon after the login answer: the watchlist is read at once (in parallel
 * with /auth/me and the socket signIn started), its instruments are subscribed as soon as their ids
 * are known (before the screen renders), and a REST snapshot of its first rows is drawn if it
 * comes before the socket's first frame. */
import { api } from '@/api/client';
import { qk, queryClient } from '@/api/queryClient';
import type { Quote, Watchlist } from '@/api/types';
import { live } from '@/features/live';
import { useQuoteStore } from '@/stores/quotes';
import { useUiStore } from '@/stores/ui';
import { fetchWatchlists } from './api';

/** How many rows the snapshot covers: more than a screen shows (GET /quotes takes up to 100). */
export const SNAPSHOT_ROWS = 40;

/** The list the watchlist shows: the one selected before (kept per browser), else the first. */
export function currentWatchlist(lists: readonly Watchlist[], selectedId: string | null | undefined): Watchlist | undefined {
  return lists.find((w) => w.id === selectedId) ?? lists[0];
}

/** Start what the first live price needs, before the terminal renders: the socket (it connects and
 * authenticates meanwhile) and the watchlist. Called by signIn with the login answer, and on load
 * for a session kept from before (main.tsx). */
export function warmStart(): void {
  live.start();
  void warmWatchlist();
}

/** Read the lists, prime their quotes on the socket and draw a snapshot; never throws (the
 * watchlist shows its own errors). */
export async function warmWatchlist(): Promise<void> {
  let lists: Watchlist[];
  try {
    lists = await queryClient.fetchQuery({ queryKey: qk.watchlists, queryFn: fetchWatchlists });
  } catch {
    return;
  }
  const ids = currentWatchlist(lists, useUiStore.getState().watchlistId)?.instruments.map((i) => i.id) ?? [];
  if (ids.length === 0) return;
  live.prime(ids, 'full'); // WatchlistPanel wants the same list in 'full' mode
  try {
    const page = await api.get<{ items: Quote[] }>('/quotes', { query: { instrument_ids: ids.slice(0, SNAPSHOT_ROWS) } });
    useQuoteStore.getState().seed(page.items);
  } catch {
    /* the socket brings the prices anyway */
  }
}
