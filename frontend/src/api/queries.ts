/** Shared queries of server state. Features call these hooks (or api.* in a mutation) and never
 * fetch() themselves. Lists that the socket updates live (orders, positions) use the keys in qk. */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from './client';
import { qk } from './queryClient';
import type { Account, DayPosition, Funds, Instrument, Meta, Order, Page, Position, Trade, User } from './types';
import { mergeFetchedOrders } from '@/features/live/cache';
import { useAuthStore } from '@/stores/auth';

const authed = () => Boolean(useAuthStore.getState().accessToken);

export function fetchMeta(): Promise<Meta> {
  return api.get<Meta>('/meta', { anonymous: true });
}
export function useMeta() {
  return useQuery({ queryKey: qk.meta, queryFn: fetchMeta, staleTime: 60_000, refetchInterval: 60_000 });
}
export function useMe() {
  return useQuery({ queryKey: qk.me, queryFn: () => api.get<User>('/auth/me'), enabled: authed() });
}
export function useAccount() {
  return useQuery({ queryKey: qk.account, queryFn: () => api.get<Account>('/account'), refetchInterval: 15_000 });
}
export function useFunds() {
  return useQuery({ queryKey: qk.funds, queryFn: () => api.get<Funds>('/funds'), refetchInterval: 15_000 });
}
export const ORDER_PAGE = 200;
export function fetchOrders(): Promise<Page<Order>> {
  return api.get<Page<Order>>('/orders', { query: { limit: ORDER_PAGE } });
}
/** The newest orders (working and completed); the socket keeps it live (features/live/cache.ts). */
export function useOrders() {
  const client = useQueryClient();
  return useQuery({
    queryKey: qk.orderList,
    queryFn: async () => {
      const page = await fetchOrders();
      const cached = client.getQueryData<Page<Order>>(qk.orderList);
      return { ...page, items: mergeFetchedOrders(cached?.items, page.items) };
    },
  });
}
export function usePositions<V extends 'net' | 'day'>(view: V) {
  return useQuery({
    queryKey: qk.positionList(view),
    queryFn: () => api.get<{ items: (V extends 'net' ? Position : DayPosition)[] }>('/positions', { query: { view } }),
  });
}
export function useTrades() {
  return useQuery({ queryKey: qk.trades, queryFn: () => api.get<Page<Trade>>('/trades', { query: { limit: 200 } }) });
}
export function fetchInstrument(id: number): Promise<Instrument> {
  return api.get<Instrument>(`/instruments/${id}`);
}
export function useInstrument(id: number | null | undefined) {
  return useQuery({
    queryKey: qk.instrument(id ?? 0),
    queryFn: () => fetchInstrument(id as number),
    enabled: Boolean(id),
    staleTime: 5 * 60_000,
  });
}
