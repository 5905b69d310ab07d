/** Candlesticks and volume (lightweight-charts, with TradingView's attribution logo kept), the
 * hovered candle's OHLCV in a legend, older history on scrolling back, the last candle updated
 * from live quotes, and working orders' prices as lines. Lazy-loaded: the library is its own chunk. */
import { useEffect, useMemo, useRef, useState } from 'react';
import {
  CandlestickSeries,
  createChart,
  HistogramSeries,
  LineStyle,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type MouseEventParams,
  type UTCTimestamp,
} from 'lightweight-charts';
import { useOrders } from '@/api/queries';
import { isWorking, type Instrument } from '@/api/types';
import { formatPrice, formatQty, tickDecimals } from '@/lib/format';
import { useQuoteStore } from '@/stores/quotes';
import { useThemeStore } from '@/stores/theme';
import type { Interval } from '@/stores/ui';
import { applyTick, type Bar } from './candles';
import { useCandles } from './useCandles';
import { chartTime } from '@/lib/format';

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function themeOptions() {
  return {
    layout: { background: { color: cssVar('--t-surface') }, textColor: cssVar('--t-muted'), attributionLogo: true },
    grid: { vertLines: { color: cssVar('--t-line') }, horzLines: { color: cssVar('--t-line') } },
    rightPriceScale: { borderColor: cssVar('--t-line') },
    timeScale: { borderColor: cssVar('--t-line') },
  };
}

export default function ChartView({ instrument, interval }: { instrument: Instrument; interval: Interval }) {
  const box = useRef<HTMLDivElement>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const candleRef = useRef<ISeriesApi<'Candlestick'> | null>(null);
  const volumeRef = useRef<ISeriesApi<'Histogram'> | null>(null);
  const lastRef = useRef<Bar | undefined>(undefined);
  const firstRef = useRef<number | undefined>(undefined);
  const linePrices = useRef<number[]>([]);
  const theme = useThemeStore((s) => s.theme);
  const { bars, loading, error, exhausted, version, loadOlder } = useCandles(instrument.id, interval);
  const [hover, setHover] = useState<Bar | null>(null);
  const loadOlderRef = useRef(loadOlder);
  loadOlderRef.current = loadOlder;
  const precision = Math.max(2, tickDecimals(instrument.tick_size));

  // create once per instrument
  useEffect(() => {
    if (!box.current) return;
    const up = cssVar('--t-up');
    const down = cssVar('--t-down');
    const chart = createChart(box.current, {
      autoSize: true,
      ...themeOptions(),
      timeScale: { ...themeOptions().timeScale, timeVisible: true, secondsVisible: false, rightOffset: 4 },
      crosshair: { mode: 0 },
      localization: { locale: 'en-IN' },
    });
    const candles = chart.addSeries(CandlestickSeries, {
      upColor: up,
      downColor: down,
      borderUpColor: up,
      borderDownColor: down,
      wickUpColor: up,
      wickDownColor: down,
      priceFormat: { type: 'price', precision, minMove: Number(instrument.tick_size) || 0.01 },
      // keep working orders' lines in view
      autoscaleInfoProvider: (original: () => { priceRange: { minValue: number; maxValue: number } | null } | null) => {
        const r = original();
        const prices = linePrices.current;
        if (!r?.priceRange || prices.length === 0) return r;
        return { ...r, priceRange: { minValue: Math.min(r.priceRange.minValue, ...prices), maxValue: Math.max(r.priceRange.maxValue, ...prices) } };
      },
    });
    const volume = chart.addSeries(HistogramSeries, { priceFormat: { type: 'volume' }, priceScaleId: 'volume', lastValueVisible: false, priceLineVisible: false });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    const onMove = (p: MouseEventParams) => {
      const d = p.seriesData.get(candles) as (Bar & { time: number }) | undefined;
      const v = p.seriesData.get(volume) as { value: number } | undefined;
      setHover(d && 'open' in d ? { ...d, volume: v?.value ?? 0 } : null);
    };
    chart.subscribeCrosshairMove(onMove);
    chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (range && range.from < 10) void loadOlderRef.current();
    });
    chartRef.current = chart;
    firstRef.current = undefined;
    candleRef.current = candles;
    volumeRef.current = volume;
    return () => {
      chart.remove();
      chartRef.current = null;
      candleRef.current = null;
      volumeRef.current = null;
    };
  }, [instrument.id, instrument.tick_size, precision]);

  useEffect(() => {
    chartRef.current?.applyOptions(themeOptions());
    const up = cssVar('--t-up');
    const down = cssVar('--t-down');
    candleRef.current?.applyOptions({ upColor: up, downColor: down, borderUpColor: up, borderDownColor: down, wickUpColor: up, wickDownColor: down });
  }, [theme]);

  // data: replace when the bars were replaced or extended backwards
  useEffect(() => {
    const candles = candleRef.current;
    const volume = volumeRef.current;
    if (!candles || !volume) return;
    const up = cssVar('--t-flash-up');
    const down = cssVar('--t-flash-down');
    const ts = chartRef.current?.timeScale();
    const range = ts?.getVisibleLogicalRange();
    const prevFirst = firstRef.current;
    const prepended = prevFirst === undefined ? 0 : bars.findIndex((b) => b.time >= prevFirst);
    candles.setData(bars.map(({ volume: _v, ...b }) => ({ ...b, time: b.time as UTCTimestamp })));
    volume.setData(bars.map((b) => ({ time: b.time as UTCTimestamp, value: b.volume, color: b.close >= b.open ? up : down })));
    lastRef.current = bars[bars.length - 1];
    firstRef.current = bars[0]?.time;
    // older history went in front: keep the view where the user was
    if (ts && range && prepended > 0) ts.setVisibleLogicalRange({ from: range.from + prepended, to: range.to + prepended });
  }, [bars, version]);

  // live: the last candle follows the quote stream
  useEffect(() => {
    let lastVolume: number | null = null;
    return useQuoteStore.subscribe((s, prev) => {
      const q = s.quotes[instrument.id];
      if (!q || q === prev.quotes[instrument.id] || q.ltp === undefined || !q.ts || q.stale) return;
      const cumulative = q.volume !== undefined && q.volume !== null ? Number(q.volume) : null;
      const delta = cumulative !== null && lastVolume !== null && cumulative >= lastVolume ? cumulative - lastVolume : 0;
      if (cumulative !== null) lastVolume = cumulative;
      const bar = applyTick(lastRef.current, Number(q.ltp), chartTime(q.ts), interval, delta);
      if (!bar || !candleRef.current || !volumeRef.current) return;
      lastRef.current = bar;
      const { volume, ...ohlc } = bar;
      candleRef.current.update({ ...ohlc, time: bar.time as UTCTimestamp });
      volumeRef.current.update({ time: bar.time as UTCTimestamp, value: volume, color: cssVar(bar.close >= bar.open ? '--t-flash-up' : '--t-flash-down') });
    });
  }, [instrument.id, interval]);

  // working orders' prices as lines
  const orders = useOrders();
  const lines = useMemo(
    () =>
      (orders.data?.items ?? [])
        .filter((o) => o.instrument_id === instrument.id && isWorking(o.status))
        .flatMap((o) => {
          const out: { price: number; title: string; side: string; id: string }[] = [];
          const qty = o.quantity - o.filled_quantity;
          if (o.limit_price) out.push({ id: `${o.id}:l`, price: +o.limit_price, title: `${o.side} ${qty} ${o.order_type === 'LIMIT' ? 'LMT' : 'STP-LMT'}`, side: o.side });
          if (o.stop_price) out.push({ id: `${o.id}:s`, price: +o.stop_price, title: `${o.side} ${qty} STOP`, side: o.side });
          return out;
        }),
    [orders.data, instrument.id],
  );
  useEffect(() => {
    const series = candleRef.current;
    if (!series) return;
    linePrices.current = lines.map((l) => l.price);
    const made: IPriceLine[] = lines.map((l) =>
      series.createPriceLine({ price: l.price, color: cssVar(l.side === 'BUY' ? '--t-buy' : '--t-sell'), lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: true, title: l.title }),
    );
    return () => {
      for (const line of made) series.removePriceLine(line);
    };
  }, [lines, theme]);

  const shown = hover ?? bars[bars.length - 1];
  return (
    <div className="relative h-full w-full" data-testid="chart" data-bars={bars.length} data-order-lines={lines.length}>
      <div ref={box} className="absolute inset-0" data-testid="chart-canvas" />
      <div className="pointer-events-none absolute left-2 top-1 z-10 flex flex-wrap gap-x-3 text-xs num" data-testid="chart-legend">
        {shown ? (
          <>
            <span>O <b>{formatPrice(shown.open, instrument.tick_size)}</b></span>
            <span>H <b>{formatPrice(shown.high, instrument.tick_size)}</b></span>
            <span>L <b>{formatPrice(shown.low, instrument.tick_size)}</b></span>
            <span>C <b className={shown.close >= shown.open ? 'text-up' : 'text-down'}>{formatPrice(shown.close, instrument.tick_size)}</b></span>
            <span>V <b>{formatQty(shown.volume)}</b></span>
          </>
        ) : (
          <span className="text-muted">{loading ? 'Loading candles…' : error ? `Candles unavailable: ${error.message}` : 'No candles yet in this range'}</span>
        )}
        {loading && shown && <span className="text-muted">loading older…</span>}
        {exhausted && <span className="text-muted">start of history</span>}
      </div>
    </div>
  );
}
