import { describe, expect, it } from 'vitest';
import type { DayPosition, Position } from '@/api/types';
import {
  closeAllTitle,
  closeOrderFor,
  dayPnl,
  dayTotals,
  describeClose,
  markPrice,
  netTotals,
  newClientOrderId,
  openPositions,
  totalPnl,
  unrealizedPnl,
} from './pnl';

const pos = (over: Partial<Position>): Position => ({
  instrument_id: 1,
  symbol: 'RELIANCE',
  product: 'MIS',
  quantity: 10,
  average_price: '100.00',
  last_price: '101.00',
  realized_pnl: '0',
  unrealized_pnl: '10',
  ...over,
});

const dayRow = (over: Partial<DayPosition>): DayPosition => ({
  instrument_id: 1,
  symbol: 'RELIANCE',
  product: 'MIS',
  day: '2026-03-05',
  buy_quantity: 0,
  buy_value: '0',
  buy_average_price: null,
  sell_quantity: 0,
  sell_value: '0',
  sell_average_price: null,
  quantity: 0,
  realized_pnl: '0',
  last_price: null,
  ...over,
});

describe('markPrice', () => {
  it('prefers the live last price, then the server one, else null', () => {
    expect(markPrice('102.5', '101')).toBe('102.5');
    expect(markPrice(undefined, '101')).toBe('101');
    expect(markPrice(null, null)).toBeNull();
    expect(markPrice('', undefined)).toBeNull();
  });
});

describe('unrealizedPnl', () => {
  it('is (ltp - avg) * qty for a long position', () => {
    expect(unrealizedPnl(10, '100.00', '101.25')).toBe('12.5');
    expect(unrealizedPnl(10, '100.00', '99.5')).toBe('-5');
  });
  it('is signed for a short position: a falling price is a gain', () => {
    expect(unrealizedPnl(-10, '100.00', '99.5')).toBe('5');
    expect(unrealizedPnl(-10, '100.00', '100.75')).toBe('-7.5');
  });
  it('is exact in decimals (no float drift)', () => {
    expect(unrealizedPnl(3, '0.1', '0.3')).toBe('0.6');
    expect(unrealizedPnl(1_000_000, '2450.05', '2450.10')).toBe('50000');
  });
  it('is 0 when flat and null without a price', () => {
    expect(unrealizedPnl(0, '100', null)).toBe('0');
    expect(unrealizedPnl(5, '100', null)).toBeNull();
    expect(unrealizedPnl(5, null, '100')).toBeNull();
  });
});

describe('totalPnl', () => {
  it('adds realized to unrealized; unknown stays unknown', () => {
    expect(totalPnl('-20.5', '12.5')).toBe('-8');
    expect(totalPnl(null, '3')).toBe('3');
    expect(totalPnl('5', null)).toBeNull();
  });
});

describe('dayPnl', () => {
  it('is sell value - buy value when the day is flat', () => {
    expect(dayPnl(dayRow({ buy_value: '1000', sell_value: '1012.5', quantity: 0 }), null)).toBe('12.5');
  });
  it('marks the open part at the last price', () => {
    // bought 10 @ 100, sold 4 @ 102: 6 left, marked at 101
    expect(dayPnl(dayRow({ buy_value: '1000', sell_value: '408', quantity: 6 }), '101')).toBe('14');
    // sold 5 @ 50 short, marked at 48
    expect(dayPnl(dayRow({ sell_value: '250', quantity: -5 }), '48')).toBe('10');
  });
  it('is null with an open quantity and no price', () => {
    expect(dayPnl(dayRow({ buy_value: '1000', quantity: 10 }), null)).toBeNull();
  });
});

describe('totals', () => {
  it('sums net rows with live marks and counts rows without a price', () => {
    const rows = [
      pos({ instrument_id: 1, quantity: 10, average_price: '100', realized_pnl: '5' }),
      pos({ instrument_id: 2, quantity: -4, average_price: '50', realized_pnl: '-1.5', last_price: '49' }),
      pos({ instrument_id: 3, quantity: 2, average_price: '10', realized_pnl: '0', last_price: null }),
    ];
    const live: Record<number, string> = { 1: '103' };
    const t = netTotals(rows, (id) => live[id]);
    // 1: +30 (live 103), 2: +4 (server 49), 3: unknown
    expect(t).toEqual({ pnl: '37.5', realized: '3.5', unrealized: '34', unknown: 1 });
  });
  it('sums the day view', () => {
    const rows = [
      dayRow({ instrument_id: 1, buy_value: '1000', quantity: 10, realized_pnl: '0' }),
      dayRow({ instrument_id: 2, buy_value: '500', sell_value: '520', quantity: 0, realized_pnl: '20' }),
    ];
    const t = dayTotals(rows, (id) => (id === 1 ? '99' : undefined));
    expect(t).toEqual({ pnl: '10', realized: '20', unrealized: '-10', unknown: 0 });
  });
});

describe('closing', () => {
  it('sells a long and buys back a short, whole quantity, same product, at market', () => {
    expect(closeOrderFor(pos({ quantity: 25, product: 'NRML', instrument_id: 7 }))).toEqual({
      instrument_id: 7,
      side: 'SELL',
      quantity: 25,
      order_type: 'MARKET',
      product: 'NRML',
      time_in_force: 'DAY',
    });
    expect(closeOrderFor(pos({ quantity: -3 }))).toMatchObject({ side: 'BUY', quantity: 3 });
    expect(closeOrderFor(pos({ quantity: 0 }))).toBeNull();
  });
  it('names what it will do', () => {
    const order = closeOrderFor(pos({ quantity: 1500 }))!;
    expect(describeClose(order, 'RELIANCE', (n) => n.toLocaleString('en-IN'))).toBe('Sell 1,500 RELIANCE (MIS) at market');
    expect(closeAllTitle(1)).toBe('Close 1 position?');
    expect(closeAllTitle(3)).toBe('Close 3 positions?');
  });
  it('acts only on held positions', () => {
    expect(openPositions([pos({ quantity: 0 }), pos({ quantity: -1 }), pos({ quantity: 2 })]).map((p) => p.quantity)).toEqual([-1, 2]);
  });
  it('makes client order ids the API accepts, new each time', () => {
    const a = newClientOrderId();
    expect(a).toMatch(/^close-[0-9a-f]{24}$/);
    expect(a.length).toBeLessThanOrEqual(64);
    expect(newClientOrderId()).not.toBe(a);
  });
});
