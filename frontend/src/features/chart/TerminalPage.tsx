/** The first screen. Desktop: the selected instrument's chart over the orders book. Phone: the
 * watchlist at /, the chart at /chart. */
import { lazy, Suspense } from 'react';
import { useInstrument } from '@/api/queries';
import { Button, cx, Empty } from '@/components/ui';
import { useLiveQuotes } from '@/features/live';
import { OrdersPanel } from '@/features/orders/OrdersPanel';
import { WatchlistPanel } from '@/features/watchlist/WatchlistPanel';
import { change, formatPercent, formatPrice, formatSigned, toneClass } from '@/lib/format';
import { useIsPhone } from '@/lib/useMedia';
import { useQuote } from '@/stores/quotes';
import { INTERVALS, useUiStore } from '@/stores/ui';

const ChartView = lazy(() => import('./ChartView'));

function InstrumentBar({ id }: { id: number }) {
  const instrument = useInstrument(id).data;
  const q = useQuote(id);
  const interval = useUiStore((s) => s.interval);
  const setInterval = useUiStore((s) => s.setInterval);
  const openTicket = useUiStore((s) => s.openTicket);
  const diff = change(q?.ltp, q?.close);
  return (
    <div className="flex shrink-0 flex-wrap items-center gap-x-3 gap-y-1 border-b border-line px-3 py-1.5">
      <div className="flex items-baseline gap-2">
        <span className="text-base font-semibold" data-testid="chart-symbol">
          {instrument?.symbol ?? '…'}
        </span>
        <span className="text-xs text-muted">{instrument?.exchange_segment}</span>
        <span className={cx('num font-semibold', toneClass(diff?.change))} data-testid="chart-ltp">
          {formatPrice(q?.ltp, instrument?.tick_size)}
        </span>
        <span className={cx('num text-xs', toneClass(diff?.change))}>
          {diff ? `${formatSigned(diff.change)} (${formatPercent(diff.percent)})` : ''}
        </span>
      </div>
      <div role="radiogroup" aria-label="Interval" className="flex gap-0.5" data-testid="chart-intervals">
        {INTERVALS.map((i) => (
          <button
            key={i}
            type="button"
            role="radio"
            aria-checked={i === interval}
            data-testid={`chart-interval-${i}`}
            onClick={() => setInterval(i)}
            className={cx('rounded px-2 py-0.5 text-xs font-medium', i === interval ? 'bg-accent/15 text-accent' : 'text-muted hover:bg-raised hover:text-fg')}
          >
            {i}
          </button>
        ))}
      </div>
      <div className="ml-auto flex gap-1">
        <Button size="sm" variant="buy" onClick={() => openTicket({ instrumentId: id, side: 'BUY' })} data-testid="chart-buy" disabled={!instrument}>
          Buy
        </Button>
        <Button size="sm" variant="sell" onClick={() => openTicket({ instrumentId: id, side: 'SELL' })} data-testid="chart-sell" disabled={!instrument}>
          Sell
        </Button>
      </div>
    </div>
  );
}

export function ChartPanel() {
  const id = useUiStore((s) => s.selectedInstrumentId);
  const interval = useUiStore((s) => s.interval);
  const instrument = useInstrument(id).data;
  useLiveQuotes(id ? [id] : [], 'full');
  if (!id) return <Empty testId="chart-empty">Pick an instrument in the watchlist to see its chart.</Empty>;
  return (
    <div className="flex h-full min-h-0 flex-col bg-surface">
      <InstrumentBar id={id} />
      <div className="relative min-h-0 flex-1">
        <Suspense fallback={<Empty>Loading chart…</Empty>}>{instrument && <ChartView key={instrument.id} instrument={instrument} interval={interval} />}</Suspense>
      </div>
    </div>
  );
}

export default function TerminalPage({ home = false }: { home?: boolean }) {
  const phone = useIsPhone();
  if (phone && home)
    return (
      <div className="flex h-full min-h-0 flex-col">
        <WatchlistPanel />
      </div>
    );
  if (phone) return <section className="h-full" data-testid="terminal-page"><ChartPanel /></section>;
  return (
    <section className="flex h-full min-h-0 flex-col" data-testid="terminal-page">
      <div className="min-h-0 flex-[3]">
        <ChartPanel />
      </div>
      <div className="flex min-h-0 flex-[2] flex-col border-t border-line bg-surface">
        <OrdersPanel compact />
      </div>
    </section>
  );
}
