/** The page's totals, recomputed from the live quotes (a shallow-compared selector: the bar
 * re-renders only when a total changes). */
import { useShallow } from 'zustand/react/shallow';
import type { DayPosition, Position } from '@/api/types';
import { cx } from '@/components/ui';
import { formatSigned, toneClass } from '@/lib/format';
import { useQuoteStore } from '@/stores/quotes';
import { dayTotals, netTotals, type Totals } from './pnl';

function useTotals(view: 'net' | 'day', rows: readonly (Position | DayPosition)[]): Totals {
  return useQuoteStore(
    useShallow((s) => {
      const ltpOf = (id: number) => s.quotes[id]?.ltp;
      return view === 'net' ? netTotals(rows as Position[], ltpOf) : dayTotals(rows as DayPosition[], ltpOf);
    }),
  );
}

function Figure({ label, value, testId, strong }: { label: string; value: string; testId: string; strong?: boolean }) {
  return (
    <div className="flex flex-col">
      <span className="text-xs text-muted">{label}</span>
      <span className={cx('num', strong ? 'text-base font-semibold' : 'font-medium', toneClass(value))} data-testid={testId}>
        {formatSigned(value)}
      </span>
    </div>
  );
}

export function TotalsBar({ view, rows }: { view: 'net' | 'day'; rows: readonly (Position | DayPosition)[] }) {
  const t = useTotals(view, rows);
  return (
    <div className="flex flex-wrap items-end gap-x-6 gap-y-2" data-testid="positions-totals">
      <Figure label={view === 'net' ? 'Total P&L' : 'Day P&L'} value={t.pnl} testId="positions-total-pnl" strong />
      <Figure label="Realized" value={t.realized} testId="positions-total-realized" />
      <Figure label={view === 'net' ? 'Unrealized' : 'Open (M2M)'} value={t.unrealized} testId="positions-total-unrealized" />
      {t.unknown > 0 && (
        <span className="text-xs text-warn" data-testid="positions-total-partial">
          {t.unknown} without a price yet (not in the totals)
        </span>
      )}
    </div>
  );
}
