/** The terminal's one live connection, wired to the stores and the query cache. Components use
 * `useLiveQuotes(ids)` to want quotes and `useQuote(id)` (stores/quotes) to read them. */
import { useEffect } from 'react';
import { endSession, refreshAccessToken } from '@/api/client';
import { fetchMeta } from '@/api/queries';
import { qk, queryClient } from '@/api/queryClient';
import type { Meta, Order, Position } from '@/api/types';
import { websocketUrl } from '@/lib/config';
import { useAuthStore } from '@/stores/auth';
import { ingestQuote, type QuoteMessage } from '@/stores/quotes';
import { useSocketStore } from '@/stores/socket';
import { applyOrderMessage, applyPositionMessage, applyTradeMessage, catchUp } from './cache';
import { LiveSocket, type ServerMessage } from './socket';
import type { Mode } from './subscriptions';

export type { Mode };

function handle(msg: ServerMessage): void {
  switch (msg.type) {
    case 'quote':
      ingestQuote(msg as unknown as QuoteMessage);
      break;
    case 'order':
      applyOrderMessage(queryClient, msg.order as Order);
      break;
    case 'trade':
      applyTradeMessage(queryClient);
      break;
    case 'position':
      applyPositionMessage(queryClient, msg.position as Position);
      break;
    case 'error':
      console.warn('socket error', msg.code, msg.message);
      break;
    default:
      break; // subscribed, unsubscribed, pong
  }
}

export const live = new LiveSocket({
  // the cached /meta even when stale (the login page read it; its websocket_url does not change),
  // so the socket is created in the same task as start(), before the terminal renders
  url: () => {
    const meta = queryClient.getQueryData<Meta>(qk.meta);
    return meta ? websocketUrl(meta) : queryClient.fetchQuery({ queryKey: qk.meta, queryFn: fetchMeta }).then(websocketUrl);
  },
  token: () => useAuthStore.getState().accessToken,
  refresh: refreshAccessToken,
  endSession,
  onMessage: handle,
  onStatus: ({ opened, ...patch }) => {
    const s = useSocketStore.getState();
    s.set({ ...patch, ...(opened ? { openCount: s.openCount + 1 } : {}) });
  },
  onReconnected: () => catchUp(queryClient),
});

/** Start the socket while logged in (signIn has usually started it already); swap it when the
 * token is refreshed; stop it on logout. */
export function useLiveConnection(): void {
  const token = useAuthStore((s) => s.accessToken);
  useEffect(() => {
    if (!token) {
      live.stop();
      return;
    }
    if (!live.isRunning) live.start();
    else live.swap();
  }, [token]);
  useEffect(() => {
    const online = () => live.kick();
    window.addEventListener('online', online);
    return () => window.removeEventListener('online', online);
  }, []);
}

/** Want live quotes for `ids` while the component is mounted. */
export function useLiveQuotes(ids: readonly number[], mode: Mode = 'full'): void {
  const key = ids.join(',');
  useEffect(() => {
    const list = key ? key.split(',').map(Number) : [];
    if (list.length === 0) return;
    live.subscribe(list, mode);
    live.releasePrimed(list, mode); // the list primed at login is now wanted by this screen
    return () => live.unsubscribe(list, mode);
  }, [key, mode]);
}
