/** Watchlists kept on the server (GET/POST/PATCH/DELETE /watchlists, PUT/DELETE of an instrument). */
import { useEffect } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '@/api/client';
import { qk, queryClient } from '@/api/queryClient';
import type { Instrument, Page, Watchlist } from '@/api/types';
import { useUiStore } from '@/stores/ui';

/** The lists, seeding each instrument's cache entry (the chart and ticket need no extra read). */
export async function fetchWatchlists(): Promise<Watchlist[]> {
  const page = await api.get<{ items: Watchlist[] }>('/watchlists');
  for (const w of page.items) for (const i of w.instruments) queryClient.setQueryData(qk.instrument(i.id), i);
  return page.items;
}

export function useWatchlists() {
  return useQuery({ queryKey: qk.watchlists, queryFn: fetchWatchlists });
}

let creatingFirst: Promise<unknown> | null = null;
/** A user with no list gets "Watchlist 1" (GET writes nothing, so the terminal creates it). */
export function useEnsureWatchlist(lists: Watchlist[] | undefined) {
  const client = useQueryClient();
  useEffect(() => {
    if (!lists || lists.length > 0 || creatingFirst) return;
    creatingFirst = api
      .post<Watchlist>('/watchlists', { name: 'Watchlist 1' })
      .catch(() => undefined)
      .finally(() => {
        creatingFirst = null;
        void client.invalidateQueries({ queryKey: qk.watchlists });
      });
  }, [lists, client]);
}

function replaceList(lists: Watchlist[] | undefined, next: Watchlist): Watchlist[] {
  return (lists ?? []).map((w) => (w.id === next.id ? next : w));
}

export function useWatchlistMutations() {
  const client = useQueryClient();
  const setWatchlist = useUiStore((s) => s.setWatchlist);
  const put = (w: Watchlist) => client.setQueryData<Watchlist[]>(qk.watchlists, (old) => replaceList(old, w));
  return {
    add: useMutation({
      mutationFn: ({ listId, instrument }: { listId: string; instrument: Instrument }) => {
        client.setQueryData(qk.instrument(instrument.id), instrument);
        return api.put<Watchlist>(`/watchlists/${listId}/instruments/${instrument.id}`);
      },
      onSuccess: put,
    }),
    remove: useMutation({
      mutationFn: ({ listId, instrumentId }: { listId: string; instrumentId: number }) =>
        api.del<Watchlist>(`/watchlists/${listId}/instruments/${instrumentId}`),
      onMutate: ({ listId, instrumentId }) =>
        client.setQueryData<Watchlist[]>(qk.watchlists, (old) =>
          old?.map((w) => (w.id === listId ? { ...w, instruments: w.instruments.filter((i) => i.id !== instrumentId) } : w)),
        ),
      onSuccess: put,
      onError: () => client.invalidateQueries({ queryKey: qk.watchlists }),
    }),
    create: useMutation({
      mutationFn: (name: string) => api.post<Watchlist>('/watchlists', { name }),
      onSuccess: (w) => {
        client.setQueryData<Watchlist[]>(qk.watchlists, (old) => [...(old ?? []), w]);
        setWatchlist(w.id);
      },
    }),
    rename: useMutation({
      mutationFn: ({ listId, name }: { listId: string; name: string }) => api.patch<Watchlist>(`/watchlists/${listId}`, { name }),
      onSuccess: put,
    }),
    drop: useMutation({
      mutationFn: (listId: string) => api.del(`/watchlists/${listId}`),
      onSuccess: (_r, listId) => {
        client.setQueryData<Watchlist[]>(qk.watchlists, (old) => old?.filter((w) => w.id !== listId));
        setWatchlist(null);
      },
    }),
  };
}

/** Instruments matching a search (symbol or name, optional segment), at most 12. */
export function useInstrumentSearch(q: string, segment: string) {
  return useQuery({
    queryKey: qk.instrumentSearch(q, segment),
    queryFn: ({ signal }) => api.get<Page<Instrument>>('/instruments', { query: { q, exchange_segment: segment, limit: 12 }, signal }),
    enabled: q.length > 0 || segment.length > 0,
    staleTime: 60_000,
    placeholderData: (prev) => prev,
  });
}
