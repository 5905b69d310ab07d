import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import { qk } from '@/api/queryClient';
import type { Order, Page, Position } from '@/api/types';
import { applyOrderMessage, applyPositionMessage, catchUp, mergeFetchedOrders, onOrderUpdate, upsertOrder, upsertPosition } from './cache';

function order(id: string, patch: Partial<Order> = {}): Order {
  return {
    id,
    client_order_id: null,
    broker_order_id: null,
    instrument_id: 1,
    symbol: 'RELIANCE',
    exchange_segment: 'NSECM',
    side: 'BUY',
    quantity: 10,
    filled_quantity: 0,
    average_price: null,
    order_type: 'LIMIT',
    limit_price: '100.00',
    stop_price: null,
    product: 'MIS',
    time_in_force: 'DAY',
    status: 'OPEN',
    reject_reason: null,
    created_at: '2026-03-05T04:00:00Z',
    updated_at: '2026-03-05T04:00:00Z',
    ...patch,
  };
}

describe('upsertOrder', () => {
  it('prepends a new order (lists are newest first)', () => {
    const list = upsertOrder([order('a')], order('b'));
    expect(list.map((o) => o.id)).toEqual(['b', 'a']);
  });
  it('replaces an order in place by id', () => {
    const list = upsertOrder([order('b'), order('a')], order('a', { status: 'FILLED', filled_quantity: 10, updated_at: '2026-03-05T04:00:01Z' }));
    expect(list.map((o) => [o.id, o.status])).toEqual([
      ['b', 'OPEN'],
      ['a', 'FILLED'],
    ]);
  });
  it('never lets an older update overwrite a newer one', () => {
    const newer = order('a', { status: 'FILLED', updated_at: '2026-03-05T04:00:05Z' });
    const list = [newer];
    expect(upsertOrder(list, order('a', { status: 'OPEN', updated_at: '2026-03-05T04:00:01Z' }))).toBe(list);
  });
});

describe('mergeFetchedOrders', () => {
  it('keeps a cached copy the socket made newer than the fetched page (no PENDING over OPEN)', () => {
    const open = order('a', { status: 'OPEN', updated_at: '2026-03-05T04:00:02Z' });
    const stale = order('a', { status: 'PENDING', updated_at: '2026-03-05T04:00:01Z' });
    const merged = mergeFetchedOrders([open], [stale, order('b')]);
    expect(merged.map((o) => [o.id, o.status])).toEqual([
      ['a', 'OPEN'],
      ['b', 'OPEN'],
    ]);
  });
  it('takes the fetched copy when it is as new or newer, and drops what the page no longer holds', () => {
    const fetched = order('a', { status: 'FILLED', updated_at: '2026-03-05T04:00:03Z' });
    expect(mergeFetchedOrders([order('a'), order('gone')], [fetched])).toEqual([fetched]);
  });
});

describe('applyOrderMessage', () => {
  it('updates the cached list and the single order, and tells listeners with the previous state', () => {
    const client = new QueryClient();
    client.setQueryData<Page<Order>>(qk.orderList, { items: [order('a')], next_cursor: null });
    const seen: [string, string | undefined][] = [];
    const off = onOrderUpdate((o, prev) => seen.push([o.status, prev?.status]));
    applyOrderMessage(client, order('a', { status: 'FILLED', filled_quantity: 10, updated_at: '2026-03-05T04:00:02Z' }));
    off();
    expect(client.getQueryData<Page<Order>>(qk.orderList)?.items[0].status).toBe('FILLED');
    expect(client.getQueryData<Order>(qk.order('a'))?.status).toBe('FILLED');
    expect(seen).toEqual([['FILLED', 'OPEN']]);
  });
  it('marks funds stale when a fill changes them', () => {
    const client = new QueryClient();
    client.setQueryData(qk.funds, { cash: '1' });
    client.setQueryData<Page<Order>>(qk.orderList, { items: [order('a')] });
    applyOrderMessage(client, order('a', { filled_quantity: 5, status: 'PARTIALLY_FILLED', updated_at: '2026-03-05T04:00:02Z' }));
    expect(client.getQueryState(qk.funds)?.isInvalidated).toBe(true);
  });
});

describe('positions', () => {
  const pos = (patch: Partial<Position> = {}): Position => ({
    instrument_id: 1,
    symbol: 'RELIANCE',
    product: 'MIS',
    quantity: 10,
    average_price: '100',
    last_price: '101',
    realized_pnl: '0',
    unrealized_pnl: '10',
    ...patch,
  });
  it('merges a socket position by instrument and product, or appends it', () => {
    expect(upsertPosition([pos()], pos({ quantity: 20 }))[0].quantity).toBe(20);
    expect(upsertPosition([pos()], pos({ product: 'NRML' }))).toHaveLength(2);
  });
  it('writes into the net view and invalidates the day view', () => {
    const client = new QueryClient();
    client.setQueryData(qk.positionList('net'), { items: [pos()] });
    client.setQueryData(qk.positionList('day'), { items: [] });
    applyPositionMessage(client, pos({ quantity: 0, realized_pnl: '5' }));
    expect(client.getQueryData<{ items: Position[] }>(qk.positionList('net'))?.items[0]).toMatchObject({ quantity: 0, realized_pnl: '5' });
    expect(client.getQueryState(qk.positionList('day'))?.isInvalidated).toBe(true);
  });
});

describe('catchUp', () => {
  it('marks every book stale after a reconnect', () => {
    const client = new QueryClient();
    for (const key of [qk.orderList, qk.positionList('net'), qk.trades, qk.funds, qk.account]) client.setQueryData(key, {});
    client.setQueryData(qk.watchlists, []);
    catchUp(client);
    for (const key of [qk.orderList, qk.positionList('net'), qk.trades, qk.funds, qk.account]) {
      expect(client.getQueryState(key)?.isInvalidated).toBe(true);
    }
    expect(client.getQueryState(qk.watchlists)?.isInvalidated).toBe(false);
  });
});
