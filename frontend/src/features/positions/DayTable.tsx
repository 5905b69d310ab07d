/** The day view: what was bought and sold today per position, the day's realized P&L and its
 * mark-to-market P&L (sell value - buy value + net quantity x live price). */
import { memo } from 'react';
import { useInstrument } from '@/api/queries';
import type { DayPosition } from '@/api/types';
import { Badge, cx } from '@/components/ui';
import { formatPrice, formatQty, formatSigned, toneClass } from '@/lib/format';
import { useQuote } from '@/stores/quotes';
import { NUM, rowKey, TD, TH } from './NetTable';
import { dayPnl, markPrice } from './pnl';

const DayRow = memo(function DayRow({ r }: { r: DayPosition }) {
  const quote = useQuote(r.instrument_id);
  const tick = useInstrument(r.instrument_id).data?.tick_size;
  const ltp = markPrice(quote?.ltp, r.last_price);
  const pnl = dayPnl(r, ltp);
  return (
    <tr className="border-t border-line hover:bg-raised" data-testid={`positions-row-${rowKey(r)}`} data-instrument-id={r.instrument_id}>
      <td className={TD}>
        <span className="font-medium" data-testid="positions-symbol">
          {r.symbol}
        </span>{' '}
        <Badge data-testid="positions-product">{r.product}</Badge>
      </td>
      <td className={cx(TD, NUM, 'hidden md:table-cell')} data-testid="positions-buy-qty">
        {formatQty(r.buy_quantity)}
      </td>
      <td className={cx(TD, NUM, 'hidden md:table-cell')} data-testid="positions-buy-avg">
        {formatPrice(r.buy_average_price, tick)}
      </td>
      <td className={cx(TD, NUM, 'hidden md:table-cell')} data-testid="positions-sell-qty">
        {formatQty(r.sell_quantity)}
      </td>
      <td className={cx(TD, NUM, 'hidden md:table-cell')} data-testid="positions-sell-avg">
        {formatPrice(r.sell_average_price, tick)}
      </td>
      <td className={cx(TD, NUM, r.quantity > 0 ? 'text-buy' : r.quantity < 0 ? 'text-sell' : 'text-muted')} data-testid="positions-qty">
        {formatQty(r.quantity)}
      </td>
      <td className={cx(TD, NUM, quote?.stale && 'text-muted')} data-testid="positions-ltp">
        {formatPrice(ltp, tick)}
      </td>
      <td className={cx(TD, NUM, 'hidden md:table-cell', toneClass(r.realized_pnl))} data-testid="positions-realized">
        {formatSigned(r.realized_pnl)}
      </td>
      <td className={cx(TD, NUM, 'font-semibold', toneClass(pnl))} data-testid="positions-pnl">
        {formatSigned(pnl)}
      </td>
    </tr>
  );
});

export function DayTable({ rows }: { rows: readonly DayPosition[] }) {
  return (
    <table className="w-full border-collapse" data-testid="positions-table">
      <thead className="bg-raised text-left">
        <tr>
          <th className={TH}>Instrument</th>
          <th className={cx(TH, 'text-right hidden md:table-cell')}>Bought</th>
          <th className={cx(TH, 'text-right hidden md:table-cell')}>Buy avg</th>
          <th className={cx(TH, 'text-right hidden md:table-cell')}>Sold</th>
          <th className={cx(TH, 'text-right hidden md:table-cell')}>Sell avg</th>
          <th className={cx(TH, 'text-right')}>Net qty</th>
          <th className={cx(TH, 'text-right')}>LTP</th>
          <th className={cx(TH, 'text-right hidden md:table-cell')}>Realized</th>
          <th className={cx(TH, 'text-right')}>Day P&amp;L</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <DayRow key={rowKey(r)} r={r} />
        ))}
      </tbody>
    </table>
  );
}
