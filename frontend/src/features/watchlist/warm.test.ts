import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { qk, queryClient } from '@/api/queryClient';
import type { Instrument, Watchlist } from '@/api/types';
import { signIn } from '@/features/auth/LoginPage';
import { live } from '@/features/live';
import { useAuthStore } from '@/stores/auth';
import { useQuoteStore } from '@/stores/quotes';
import { useUiStore } from '@/stores/ui';
import { currentWatchlist, SNAPSHOT_ROWS, warmWatchlist } from './warm';

const instrument = (id: number): Instrument => ({
  id, symbol: `S${id}`, name: `S${id}`, exchange_segment: 'NSECM', exchange_instrument_id: id, series: 'EQ', tick_size: '0.05', lot_size: 1,
  active: true, expiry: null, freeze_quantity: null, option_type: null, strike: null,
});
const list = (id: string, ids: number[]): Watchlist => ({ id, name: id, position: 0, instruments: ids.map(instrument) });
const LISTS = [list('w1', [1, 2]), list('w2', Array.from({ length: 50 }, (_, n) => 100 + n))];

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** A fetch whose answers the test releases one path at a time, to see what waits on what. */
function gatedFetch(answers: Record<string, () => Response>) {
  const waiting = new Map<string, () => void>();
  const calls: string[] = [];
  const fetchMock = vi.fn((input: RequestInfo | URL) => {
    const url = new URL(String(input), 'http://localhost');
    const path = url.pathname.replace('/api/v1', '');
    calls.push(path + url.search);
    return new Promise<Response>((resolve) => waiting.set(path, () => resolve(answers[path]?.() ?? json(404, {}))));
  });
  const release = async (path: string) => {
    waiting.get(path)?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { fetchMock, calls, release };
}

const quotesFor = (search: string) =>
  new URLSearchParams(search).get('instrument_ids')!.split(',').map((id) => ({ instrument_id: Number(id), ltp: `${id}.00`, stale: false, ts: 't' }));

describe('currentWatchlist', () => {
  it('is the list selected before, else the first', () => {
    expect(currentWatchlist(LISTS, 'w2')?.id).toBe('w2');
    expect(currentWatchlist(LISTS, 'gone')?.id).toBe('w1');
    expect(currentWatchlist(LISTS, null)?.id).toBe('w1');
    expect(currentWatchlist([], 'w1')).toBeUndefined();
  });
});

describe('warm start', () => {
  let prime: ReturnType<typeof vi.spyOn>;
  let start: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    queryClient.clear();
    useQuoteStore.getState().reset();
    useUiStore.setState({ watchlistId: 'w2' });
    useAuthStore.setState({ accessToken: 'a', refreshToken: 'r' });
    prime = vi.spyOn(live, 'prime').mockImplementation(() => undefined);
    start = vi.spyOn(live, 'start').mockImplementation(() => undefined);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllGlobals();
    useAuthStore.getState().clear();
  });

  it('primes the shown list on the socket as soon as its ids are known, then draws a snapshot of its first rows', async () => {
    let search = '';
    const gate = gatedFetch({
      '/watchlists': () => json(200, { items: LISTS }),
      '/quotes': () => json(200, { items: quotesFor(search), missing: [] }),
    });
    vi.stubGlobal('fetch', gate.fetchMock);
    const done = warmWatchlist();
    await vi.waitFor(() => expect(gate.calls).toEqual(['/watchlists']));
    expect(prime).not.toHaveBeenCalled();

    await gate.release('/watchlists');
    const ids = LISTS[1].instruments.map((i) => i.id);
    await vi.waitFor(() => expect(prime).toHaveBeenCalledWith(ids, 'full'));
    // the subscription did not wait for the snapshot, which asks for the first rows only
    await vi.waitFor(() => expect(gate.calls).toHaveLength(2));
    search = new URL(gate.calls[1], 'http://localhost').search;
    expect(gate.calls[1].startsWith('/quotes?')).toBe(true);
    expect(quotesFor(search).map((q) => q.instrument_id)).toEqual(ids.slice(0, SNAPSHOT_ROWS));
    expect(useQuoteStore.getState().quotes[100]).toBeUndefined();

    await gate.release('/quotes');
    await done;
    expect(useQuoteStore.getState().quotes[100]).toMatchObject({ ltp: '100.00' });
    expect(queryClient.getQueryData(qk.watchlists)).toEqual(LISTS); // the watchlist renders from the same answer
    expect(queryClient.getQueryData(qk.instrument(101))).toMatchObject({ symbol: 'S101' });
  });

  it('keeps prices the socket brought first', async () => {
    vi.stubGlobal('fetch', vi.fn(async (input: RequestInfo | URL) => {
      const url = new URL(String(input), 'http://localhost');
      if (url.pathname.endsWith('/watchlists')) return json(200, { items: [list('w2', [7])] });
      useQuoteStore.getState().apply([{ instrument_id: 7, ltp: '7.50' }]); // a socket frame meanwhile
      return json(200, { items: [{ instrument_id: 7, ltp: '7.00', stale: false, ts: 't' }] });
    }));
    await warmWatchlist();
    expect(useQuoteStore.getState().quotes[7].ltp).toBe('7.50');
  });

  it('does nothing more for an empty list, and never throws when a read fails', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => json(200, { items: [list('w2', [])] })));
    await warmWatchlist();
    expect(prime).not.toHaveBeenCalled();

    queryClient.clear();
    vi.stubGlobal('fetch', vi.fn(async (input: RequestInfo | URL) =>
      String(input).includes('/quotes') ? json(503, { error: { code: 'unavailable', message: 'down', details: {} } }) : json(200, { items: [list('w2', [3])] }),
    ));
    await expect(warmWatchlist()).resolves.toBeUndefined();
    expect(prime).toHaveBeenCalledWith([3], 'full');

    queryClient.clear();
    vi.stubGlobal('fetch', vi.fn(async () => json(403, { error: { code: 'forbidden', message: 'x', details: {} } })));
    await expect(warmWatchlist()).resolves.toBeUndefined();
  });

  it('signIn starts the socket and asks for the watchlist and the user with the login answer, before either answers', async () => {
    useAuthStore.getState().clear();
    const gate = gatedFetch({
      '/auth/login': () => json(200, { access_token: 'acc', refresh_token: 'ref', expires_in: 900, token_type: 'Bearer' }),
      '/watchlists': () => json(200, { items: LISTS }),
      '/auth/me': () => json(200, { id: 'u', email: 'u@x.in', name: 'U', role: 'trader' }),
      '/quotes': () => json(200, { items: [], missing: [] }),
    });
    vi.stubGlobal('fetch', gate.fetchMock);
    const signedIn = signIn('u@x.in', 'pw');
    await vi.waitFor(() => expect(gate.calls).toEqual(['/auth/login']));
    expect(start).not.toHaveBeenCalled();

    await gate.release('/auth/login');
    await signedIn; // the terminal opens now; nothing below has answered yet
    expect(useAuthStore.getState().accessToken).toBe('acc');
    expect(start).toHaveBeenCalledTimes(1);
    expect(gate.calls.slice(1).sort()).toEqual(['/auth/me', '/watchlists']);
    expect(prime).not.toHaveBeenCalled();

    await gate.release('/watchlists');
    await vi.waitFor(() => expect(prime).toHaveBeenCalled()); // /auth/me still unanswered
  });
});
