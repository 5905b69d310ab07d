/** The TanStack Query client and the query keys every feature shares (the socket's handlers
 * write into the same keys, so live updates and fetched lists stay one cache). */
import { QueryClient } from '@tanstack/react-query';
import { ApiError } from './errors';

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: false,
      // 4xx answers are final; network errors and 5xx get two more tries
      retry: (count, err) => !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
    },
    mutations: { retry: false },
  },
});

export const qk = {
  meta: ['meta'] as const,
  me: ['me'] as const,
  account: ['account'] as const,
  funds: ['funds'] as const,
  /** every order list: ['orders', 'list'] (newest first, up to 200) */
  orders: ['orders'] as const,
  orderList: ['orders', 'list'] as const,
  order: (id: string) => ['orders', 'one', id] as const,
  orderEvents: (id: string) => ['orders', 'events', id] as const,
  /** ['positions', 'net'] and ['positions', 'day'] */
  positions: ['positions'] as const,
  positionList: (view: 'net' | 'day') => ['positions', view] as const,
  trades: ['trades'] as const,
  watchlists: ['watchlists'] as const,
  instrument: (id: number) => ['instrument', id] as const,
  instrumentSearch: (q: string, segment: string) => ['instruments', 'search', q, segment] as const,
  candles: (id: number, interval: string) => ['candles', id, interval] as const,
  brokerAccounts: ['broker-accounts'] as const,
  admin: ['admin'] as const,
};
