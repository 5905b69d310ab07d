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
import { qtyTone } from '@/lib/side';

function useDayRow(r: DayPosition) {
  const quote = useQuote(r.instrument_id);
  const tick = useInstrument(r.instrument_id).data?.tick_size;
  const ltp = markPrice(quote?.ltp, r.last_price);
  return { quote, tick, ltp, pnl: dayPnl(r, ltp) };
}

const DayRow = memo(function DayRow({ r }: { r: DayPosition }) {
  const { quote, tick, ltp, pnl } = useDayRow(r);
  return (
    <tr className="border-t border-line hover:bg-raised" data-testid={`positions-row-${rowKey(r)}`} data-instrument-id={r.instrument_id}>
      <td className={TD}>
        <span className="font-medium" data-testid="positions-symbol">
          {r.symbol}
        </span>{' '}
        <Badge data-testid="positions-product">{r.product}</Badge>
      </td>
      <td className={cx(TD, NUM)} data-testid="positions-buy-qty">
        {formatQty(r.buy_quantity)}
      </td>
      <td className={cx(TD, NUM)} data-testid="positions-buy-avg">
        {formatPrice(r.buy_average_price, tick)}
      </td>
      <td className={cx(TD, NUM)} data-testid="positions-sell-qty">
        {formatQty(r.sell_quantity)}
      </td>
      <td className={cx(TD, NUM)} data-testid="positions-sell-avg">
        {formatPrice(r.sell_average_price, tick)}
      </td>
      <td className={cx(TD, NUM, qtyTone(r.quantity))} data-testid="positions-qty">
        {formatQty(r.quantity)}
      </td>
      <td className={cx(TD, NUM, quote?.stale && 'text-muted')} data-testid="positions-ltp">
        {formatPrice(ltp, tick)}
      </td>
      <td className={cx(TD, NUM, toneClass(r.realized_pnl))} data-testid="positions-realized">
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
          <th className={cx(TH, 'text-right')}>Bought</th>
          <th className={cx(TH, 'text-right')}>Buy avg</th>
          <th className={cx(TH, 'text-right')}>Sold</th>
          <th className={cx(TH, 'text-right')}>Sell avg</th>
          <th className={cx(TH, 'text-right')}>Net qty</th>
          <th className={cx(TH, 'text-right')}>LTP</th>
          <th className={cx(TH, 'text-right')}>Realized</th>
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

/** The phone's form of a day row. */
const DayCard = memo(function DayCard({ r }: { r: DayPosition }) {
  const { quote, tick, ltp, pnl } = useDayRow(r);
  return (
    <li className="flex items-center gap-3 border-t border-line px-3 py-2 first:border-t-0" data-testid={`positions-row-${rowKey(r)}`} data-instrument-id={r.instrument_id}>
      <div className="min-w-0 flex-1">
        <div className="flex items-center gap-1">
          <span className="truncate font-medium" data-testid="positions-symbol">
            {r.symbol}
          </span>
          <Badge data-testid="positions-product">{r.product}</Badge>
          <span className={cx('num ml-1 text-xs', qtyTone(r.quantity))} data-testid="positions-qty">
            net {formatQty(r.quantity)}
          </span>
        </div>
        <div className="num text-xs text-muted">
          B <span data-testid="positions-buy-qty">{formatQty(r.buy_quantity)}</span> @ <span data-testid="positions-buy-avg">{formatPrice(r.buy_average_price, tick)}</span> · S{' '}
          <span data-testid="positions-sell-qty">{formatQty(r.sell_quantity)}</span> @ <span data-testid="positions-sell-avg">{formatPrice(r.sell_average_price, tick)}</span> · LTP{' '}
          <span className={cx(quote?.stale && 'opacity-60')} data-testid="positions-ltp">
            {formatPrice(ltp, tick)}
          </span>
        </div>
      </div>
      <div className={cx('num text-right font-semibold', toneClass(pnl))} data-testid="positions-pnl">
        {formatSigned(pnl)}
      </div>
    </li>
  );
});

export function DayCards({ rows }: { rows: readonly DayPosition[] }) {
  return (
    <ul data-testid="positions-table">
      {rows.map((r) => (
        <DayCard key={rowKey(r)} r={r} />
      ))}
    </ul>
  );
}
