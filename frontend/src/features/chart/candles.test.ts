import { describe, expect, it } from 'vitest';
import { applyTick, bucketOf, mergeBars, toBar } from './candles';

describe('candles', () => {
  it('converts API candles to chart bars in IST wall-clock seconds', () => {
    const bar = toBar({ ts: '2026-03-05T03:45:00Z', open: '100.5', high: '101', low: '100', close: '100.75', volume: 1200 });
    expect(bar).toEqual({ time: Date.UTC(2026, 2, 5, 9, 15) / 1000, open: 100.5, high: 101, low: 100, close: 100.75, volume: 1200 });
  });
  it('buckets by interval', () => {
    const t = Date.UTC(2026, 2, 5, 9, 17, 30) / 1000;
    expect(bucketOf(t, '1m')).toBe(Date.UTC(2026, 2, 5, 9, 17) / 1000);
    expect(bucketOf(t, '5m')).toBe(Date.UTC(2026, 2, 5, 9, 15) / 1000);
    expect(bucketOf(t, '1d')).toBe(Date.UTC(2026, 2, 5) / 1000);
  });
  it('extends the last bar within its bucket', () => {
    const last = { time: 600, open: 10, high: 11, low: 9, close: 10, volume: 5 };
    expect(applyTick(last, 12, 650, '5m', 3)).toEqual({ time: 600, open: 10, high: 12, low: 9, close: 12, volume: 8 });
    expect(applyTick(last, 8, 899, '5m')).toMatchObject({ low: 8, close: 8, high: 11 });
  });
  it('opens a new bar in a later bucket and ignores an earlier one', () => {
    const last = { time: 600, open: 10, high: 11, low: 9, close: 10, volume: 5 };
    expect(applyTick(last, 10.5, 900, '5m', 2)).toEqual({ time: 900, open: 10.5, high: 10.5, low: 10.5, close: 10.5, volume: 2 });
    expect(applyTick(last, 10.5, 599, '5m')).toBeNull();
    expect(applyTick(undefined, 7, 61, '1m')).toMatchObject({ time: 60, open: 7 });
  });
  it('merges older history in front without duplicates', () => {
    const a = [{ time: 1, open: 1, high: 1, low: 1, close: 1, volume: 0 }, { time: 2, open: 2, high: 2, low: 2, close: 2, volume: 0 }];
    const b = [{ time: 2, open: 9, high: 9, low: 9, close: 9, volume: 0 }, { time: 3, open: 3, high: 3, low: 3, close: 3, volume: 0 }];
    expect(mergeBars(a, b).map((x) => [x.time, x.open])).toEqual([[1, 1], [2, 9], [3, 3]]);
  });
});
