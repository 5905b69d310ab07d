import { describe, expect, it } from 'vitest';
import type { Trade } from '@/api/types';
import { formatTime, setSessionTimeZone } from '@/lib/format';
import { flattenTrades, nextCursor, shortId } from './pages';

const trade = (id: string): Trade => ({
  id,
  order_id: `o-${id}`,
  instrument_id: 1,
  side: 'BUY',
  quantity: 1,
  price: '100',
  traded_at: '2026-03-05T04:00:00Z',
});

describe('trade pages', () => {
  it('follows next_cursor and stops at the end', () => {
    expect(nextCursor({ items: [], next_cursor: 'abc' })).toBe('abc');
    expect(nextCursor({ items: [], next_cursor: null })).toBeUndefined();
    expect(nextCursor(undefined)).toBeUndefined();
  });
  it('flattens pages in order without duplicates', () => {
    const pages = [{ items: [trade('3'), trade('2')] }, { items: [trade('2'), trade('1')] }];
    expect(flattenTrades(pages).map((t) => t.id)).toEqual(['3', '2', '1']);
    expect(flattenTrades(undefined)).toEqual([]);
  });
  it('shortens order ids', () => {
    expect(shortId('0c8f2a51-1111-2222-3333-444455556666')).toBe('0c8f2a51');
  });
});

describe('trade times in Asia/Kolkata', () => {
  it('shows HH:mm:ss for today and a date for older trades', () => {
    setSessionTimeZone('Asia/Kolkata');
    const now = new Date('2026-03-05T10:00:00Z'); // 15:30 IST
    expect(formatTime('2026-03-05T04:00:05Z', now)).toBe('09:30:05');
    // 23:00 UTC on the 4th is 04:30 IST on the 5th: still today in the session zone
    expect(formatTime('2026-03-04T23:00:00Z', now)).toBe('04:30:00');
    expect(formatTime('2026-03-04T10:00:00Z', now)).toMatch(/04 Mar 2026/);
  });
});
