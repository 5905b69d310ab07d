/** Live order/trade/position messages written into the query cache, so fetched lists and socket
 * updates are one source of truth. The reducers are pure (unit-tested); apply* wire them to the
 * QueryClient. */
import type { QueryClient } from '@tanstack/react-query';
import { qk } from '@/api/queryClient';
import type { Order, Page, Position } from '@/api/types';

const rank = (o: Pick<Order, 'updated_at'>) => Date.parse(o.updated_at) || 0;

/** The list with `order` in it: replaced by id (unless the cached copy is newer), or prepended
 * when new (lists are newest first). */
export function upsertOrder(list: readonly Order[], order: Order): Order[] {
  const i = list.findIndex((o) => o.id === order.id);
  if (i < 0) return [order, ...list];
  if (rank(list[i]) > rank(order)) return list as Order[];
  const next = list.slice();
  next[i] = { ...list[i], ...order };
  return next;
}

/** A fetched page of orders with the cached copies kept where they are newer: a list read before
 * an order's socket update can arrive after it, and must not roll the order back (PENDING over
 * OPEN). Orders the page does not hold are the server's to drop. */
export function mergeFetchedOrders(cached: readonly Order[] | undefined, fetched: readonly Order[]): Order[] {
  if (!cached?.length) return fetched as Order[];
  const byId = new Map(cached.map((o) => [o.id, o]));
  return fetched.map((o) => {
    const mine = byId.get(o.id);
    return mine && rank(mine) > rank(o) ? mine : o;
  });
}

/** Net positions with a socket position merged in; a position that went flat with no P&L left is
 * dropped only by a refetch (the server decides what the net view holds). */
export function upsertPosition(list: readonly Position[], position: Partial<Position> & Pick<Position, 'instrument_id'>): Position[] {
  const i = list.findIndex((p) => p.instrument_id === position.instrument_id && (!position.product || p.product === position.product));
  if (i < 0) return [...list, position as Position];
  const next = list.slice();
  next[i] = { ...list[i], ...position };
  return next;
}

export type OrderListener = (order: Order, previous: Order | undefined) => void;
const orderListeners = new Set<OrderListener>();
/** Be told of every order update from the socket (toasts): returns an unsubscribe. */
export function onOrderUpdate(listener: OrderListener): () => void {
  orderListeners.add(listener);
  return () => orderListeners.delete(listener);
}

export function applyOrderMessage(client: QueryClient, order: Order): void {
  const list = client.getQueryData<Page<Order>>(qk.orderList);
  const previous = list?.items.find((o) => o.id === order.id);
  if (list) client.setQueryData<Page<Order>>(qk.orderList, { ...list, items: upsertOrder(list.items, order) });
  client.setQueryData<Order>(qk.order(order.id), (old) => (old && rank(old) > rank(order) ? old : { ...old, ...order }));
  client.invalidateQueries({ queryKey: qk.orderEvents(order.id) });
  if (order.filled_quantity !== previous?.filled_quantity || order.status !== previous?.status) {
    client.invalidateQueries({ queryKey: qk.funds });
  }
  for (const l of orderListeners) l(order, previous);
}

export function applyTradeMessage(client: QueryClient): void {
  client.invalidateQueries({ queryKey: qk.trades });
  client.invalidateQueries({ queryKey: qk.positions });
  client.invalidateQueries({ queryKey: qk.funds });
}

export function applyPositionMessage(client: QueryClient, position: Partial<Position> & Pick<Position, 'instrument_id'>): void {
  const net = client.getQueryData<{ items: Position[] }>(qk.positionList('net'));
  if (net) client.setQueryData(qk.positionList('net'), { ...net, items: upsertPosition(net.items, position) });
  client.invalidateQueries({ queryKey: qk.positionList('day') });
  client.invalidateQueries({ queryKey: qk.funds });
}

/** After a reconnect: re-read everything the socket may have changed while away. */
export function catchUp(client: QueryClient): void {
  client.invalidateQueries({ queryKey: qk.orders });
  client.invalidateQueries({ queryKey: qk.positions });
  client.invalidateQueries({ queryKey: qk.trades });
  client.invalidateQueries({ queryKey: qk.funds });
  client.invalidateQueries({ queryKey: qk.account });
}
