/** One watchlist row: reads its own quote from the store, so a tick re-renders this row only. */
import { memo, useEffect, useState } from 'react';
import type { Instrument } from '@/api/types';
import { cx } from '@/components/ui';
import { change, tickDecimals, formatAge, formatQty, formatCompact, formatPercent, formatPrice, formatSigned, MISSING, toneClass } from '@/lib/format';
import { useQuote } from '@/stores/quotes';

interface Props {
  instrument: Instrument;
  selected: boolean;
  onSelect: (id: number) => void;
  onTrade: (id: number, side: 'BUY' | 'SELL') => void;
  onChart: (id: number) => void;
  onRemove: (id: number) => void;
  style?: React.CSSProperties;
  optionId: string;
}

function useNow(active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

export const WatchlistRow = memo(function WatchlistRow({ instrument: i, selected, onSelect, onTrade, onChart, onRemove, style, optionId }: Props) {
  const q = useQuote(i.id);
  const stale = Boolean(q?.stale);
  const now = useNow(stale);
  const diff = change(q?.ltp, q?.close);
  const tick = i.tick_size;
  const age = stale && q?.ts ? formatAge(now - Date.parse(q.ts)) : null;
  return (
    <div
      id={optionId}
      role="listitem"
      aria-current={selected ? 'true' : undefined}
      style={style}
      data-testid={`watchlist-row-${i.id}`}
      data-symbol={i.symbol}
      data-stale={stale ? 'true' : 'false'}
      onClick={() => onSelect(i.id)}
      className={cx(
        'group absolute left-0 right-0 grid cursor-pointer grid-cols-[1fr_auto_auto] items-center gap-x-3 border-b border-line px-3 text-[13px]',
        selected ? 'bg-accent/10' : 'hover:bg-raised',
        stale && 'opacity-60',
      )}
    >
      <div className="min-w-0">
        <div className="flex items-center gap-1.5">
          <span className="truncate font-semibold" data-testid="watchlist-symbol">
            {i.symbol}
          </span>
          {stale && (
            <span className="rounded bg-raised px-1 text-[10px] font-medium text-muted" data-testid="watchlist-stale" title="The feed for this instrument is silent">
              stale {age}
            </span>
          )}
        </div>
        <div className="flex gap-2 truncate whitespace-nowrap text-[11px] text-muted">
          <span data-testid="watchlist-segment">{i.exchange_segment}</span>
          <span className="num" title={q?.volume != null ? `Volume ${formatQty(q.volume)}` : undefined} data-testid="watchlist-volume">
            {q?.volume !== undefined && q?.volume !== null ? formatCompact(q.volume) : ''}
          </span>
        </div>
      </div>
      <div className="num text-right">
        <div key={q?.tickSeq ?? 0} className={cx('rounded px-1 font-semibold', q?.tickSeq ? (q.tick === 'up' ? 'flash-up' : q.tick === 'down' ? 'flash-down' : '') : '', toneClass(diff?.change))} data-testid="watchlist-ltp">
          {formatPrice(q?.ltp, tick)}
        </div>
        <div className="text-[11px] text-muted" title="Bid / ask">
          <span data-testid="watchlist-bid">{formatPrice(q?.bid, tick)}</span>
          {' / '}
          <span data-testid="watchlist-ask">{formatPrice(q?.ask, tick)}</span>
        </div>
      </div>
      <div className={cx('num w-[4.5rem] text-right', toneClass(diff?.change))}>
        <div data-testid="watchlist-change">{diff ? formatSigned(diff.change, Math.max(2, tickDecimals(tick))) : MISSING}</div>
        <div className="text-[11px]" data-testid="watchlist-change-pct">
          {diff ? formatPercent(diff.percent) : MISSING}
        </div>
      </div>
      <div className={cx('pointer-events-none absolute inset-y-0 right-2 items-center gap-1', selected ? 'flex md:hidden md:group-hover:flex' : 'hidden group-hover:flex')}>
        <div className="pointer-events-auto flex gap-1 rounded bg-surface/95 p-1 shadow">
          <button type="button" className="h-7 w-7 rounded bg-buy text-xs font-bold text-white" aria-label={`Buy ${i.symbol}`} data-testid="watchlist-buy" onClick={(e) => (e.stopPropagation(), onTrade(i.id, 'BUY'))}>
            B
          </button>
          <button type="button" className="h-7 w-7 rounded bg-sell text-xs font-bold text-white" aria-label={`Sell ${i.symbol}`} data-testid="watchlist-sell" onClick={(e) => (e.stopPropagation(), onTrade(i.id, 'SELL'))}>
            S
          </button>
          <button type="button" className="h-7 w-7 rounded border border-line bg-surface text-xs" aria-label={`Chart ${i.symbol}`} data-testid="watchlist-chart" onClick={(e) => (e.stopPropagation(), onChart(i.id))}>
            ▤
          </button>
          <button type="button" className="h-7 w-7 rounded border border-line bg-surface text-xs text-muted" aria-label={`Remove ${i.symbol}`} data-testid="watchlist-remove" onClick={(e) => (e.stopPropagation(), onRemove(i.id))}>
            ✕
          </button>
        </div>
      </div>
    </div>
  );
});
