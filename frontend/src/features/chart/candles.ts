/** Candle data for the chart: API candles (decimal strings, UTC times) become the chart's bars
 * (numbers, session-zone wall-clock seconds), and the live quote stream updates the last bar. */
import type { Candle } from '@/api/types';
import { chartTime } from '@/lib/format';
import type { Interval } from '@/stores/ui';

export const INTERVAL_SECONDS: Record<Interval, number> = { '1m': 60, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '1d': 86400 };
/** How far back one request reaches (the server's default span per interval). */
export const SPAN_MS: Record<Interval, number> = {
  '1m': 86_400_000,
  '5m': 7 * 86_400_000,
  '15m': 30 * 86_400_000,
  '30m': 60 * 86_400_000,
  '1h': 90 * 86_400_000,
  '1d': 365 * 86_400_000,
};

export interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export function toBar(c: Candle): Bar {
  return { time: chartTime(c.ts), open: +c.open, high: +c.high, low: +c.low, close: +c.close, volume: Number(c.volume) || 0 };
}

/** The bucket (chart seconds) a moment falls in: buckets align to the session zone's clock, as the
 * server's bucket_start does. */
export function bucketOf(chartSeconds: number, interval: Interval): number {
  const step = INTERVAL_SECONDS[interval];
  return Math.floor(chartSeconds / step) * step;
}

/** Older bars merged before newer ones, one bar per time, ascending. */
export function mergeBars(older: readonly Bar[], newer: readonly Bar[]): Bar[] {
  const byTime = new Map<number, Bar>();
  for (const b of older) byTime.set(b.time, b);
  for (const b of newer) byTime.set(b.time, b);
  return [...byTime.values()].sort((a, b) => a.time - b.time);
}

/** The last bar after a trade at `price` at chart time `t` with `volume` traded since the last
 * quote: the same bucket extends the bar, a later one opens a new bar, an earlier one changes
 * nothing (null). */
export function applyTick(last: Bar | undefined, price: number, t: number, interval: Interval, volume = 0): Bar | null {
  if (!Number.isFinite(price)) return null;
  const time = bucketOf(t, interval);
  if (last && time < last.time) return null;
  if (last && time === last.time) {
    return { ...last, high: Math.max(last.high, price), low: Math.min(last.low, price), close: price, volume: last.volume + volume };
  }
  return { time, open: price, high: price, low: price, close: price, volume };
}
