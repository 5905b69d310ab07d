/** The net view: one row per held position (or one with P&L today), marked live from the quote
 * store. A tick re-renders only its row (useQuote inside the row). */
import { memo } from 'react';
import { useInstrument } from '@/api/queries';
import type { Position } from '@/api/types';
import { Badge, Button, cx } from '@/components/ui';
import { formatPrice, formatQty, formatSigned, toneClass } from '@/lib/format';
import { useQuote } from '@/stores/quotes';
import { markPrice, totalPnl, unrealizedPnl } from './pnl';
import { qtyTone } from '@/lib/side';

export const TH = 'px-2 py-1.5 text-xs font-medium text-muted whitespace-nowrap';
export const TD = 'px-2 py-1.5 whitespace-nowrap';
export const NUM = 'num text-right';

export function rowKey(p: Pick<Position, 'instrument_id' | 'product'>): string {
  return `${p.instrument_id}-${p.product}`;
}

function useNetRow(p: Position) {
  const quote = useQuote(p.instrument_id);
  const tick = useInstrument(p.instrument_id).data?.tick_size;
  const ltp = markPrice(quote?.ltp, p.last_price);
  const unrealized = unrealizedPnl(p.quantity, p.average_price, ltp);
  return { quote, tick, ltp, unrealized, total: totalPnl(p.realized_pnl, unrealized) };
}

const NetRow = memo(function NetRow({ p, onClose }: { p: Position; onClose: (p: Position) => void }) {
  const { quote, tick, ltp, unrealized, total } = useNetRow(p);
  return (
    <tr className="border-t border-line hover:bg-raised" data-testid={`positions-row-${rowKey(p)}`} data-instrument-id={p.instrument_id}>
      <td className={TD}>
        <span className="font-medium" data-testid="positions-symbol">
          {p.symbol}
        </span>{' '}
        <Badge data-testid="positions-product">{p.product}</Badge>
      </td>
      <td className={cx(TD, NUM, qtyTone(p.quantity))} data-testid="positions-qty">
        {formatQty(p.quantity)}
      </td>
      <td className={cx(TD, NUM)} data-testid="positions-avg">
        {formatPrice(p.quantity ? p.average_price : null, tick)}
      </td>
      <td className={cx(TD, NUM, quote?.stale && 'text-muted')} data-testid="positions-ltp" title={quote?.stale ? 'stale quote' : undefined}>
        {formatPrice(ltp, tick)}
      </td>
      <td className={cx(TD, NUM, toneClass(unrealized))} data-testid="positions-unrealized">
        {formatSigned(unrealized)}
      </td>
      <td className={cx(TD, NUM, toneClass(p.realized_pnl))} data-testid="positions-realized">
        {formatSigned(p.realized_pnl)}
      </td>
      <td className={cx(TD, NUM, 'font-semibold', toneClass(total))} data-testid="positions-pnl">
        {formatSigned(total)}
      </td>
      <td className={cx(TD, 'text-right')}>
        {p.quantity !== 0 && (
          <Button size="sm" onClick={() => onClose(p)} data-testid="positions-close" aria-label={`Close ${p.symbol} ${p.product}`}>
            Close
          </Button>
        )}
      </td>
    </tr>
  );
});

/** The phone's form of a row: a two-line card with the same test ids. */
const NetCard = memo(function NetCard({ p, onClose }: { p: Position; onClose: (p: Position) => void }) {
  const { quote, tick, ltp, total } = useNetRow(p);
  return (
    <li className="flex items-center gap-3 border-t border-line px-3 py-2 first:border-t-0" data-testid={`positions-row-${rowKey(p)}`} data-instrument-id={p.instrument_id}>
      <div className="min-w-0 flex-1">
        <div className="flex items-center gap-1">
          <span className="truncate font-medium" data-testid="positions-symbol">
            {p.symbol}
          </span>
          <Badge data-testid="positions-product">{p.product}</Badge>
        </div>
        <div className="num text-xs text-muted">
          <span className={qtyTone(p.quantity)} data-testid="positions-qty">
            {formatQty(p.quantity)}
          </span>{' '}
          @ <span data-testid="positions-avg">{formatPrice(p.quantity ? p.average_price : null, tick)}</span> · LTP{' '}
          <span className={cx(quote?.stale && 'opacity-60')} data-testid="positions-ltp">
            {formatPrice(ltp, tick)}
          </span>
        </div>
      </div>
      <div className={cx('num text-right font-semibold', toneClass(total))} data-testid="positions-pnl">
        {formatSigned(total)}
      </div>
      {p.quantity !== 0 ? (
        <Button size="sm" onClick={() => onClose(p)} data-testid="positions-close" aria-label={`Close ${p.symbol} ${p.product}`}>
          Close
        </Button>
      ) : (
        <span className="w-[3.25rem]" aria-hidden />
      )}
    </li>
  );
});

export function NetCards({ rows, onClose }: { rows: readonly Position[]; onClose: (p: Position) => void }) {
  return (
    <ul data-testid="positions-table">
      {rows.map((p) => (
        <NetCard key={rowKey(p)} p={p} onClose={onClose} />
      ))}
    </ul>
  );
}

export function NetTable({ rows, onClose }: { rows: readonly Position[]; onClose: (p: Position) => void }) {
  return (
    <table className="w-full border-collapse" data-testid="positions-table">
      <thead className="bg-raised text-left">
        <tr>
          <th className={TH}>Instrument</th>
          <th className={cx(TH, 'text-right')}>Qty</th>
          <th className={cx(TH, 'text-right')}>Avg</th>
          <th className={cx(TH, 'text-right')}>LTP</th>
          <th className={cx(TH, 'text-right')}>Unrealized</th>
          <th className={cx(TH, 'text-right')}>Realized</th>
          <th className={cx(TH, 'text-right')}>P&amp;L</th>
          <th className={TH}>
            <span className="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {rows.map((p) => (
          <NetRow key={rowKey(p)} p={p} onClose={onClose} />
        ))}
      </tbody>
    </table>
  );
}
