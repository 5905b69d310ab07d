/** Trades page (/trades, or /trades?order_id=<id> for one order's fills): the trade book newest
 * first, 50 a page with "Load more" (the API's cursor), times in the session zone (HH:mm:ss today,
 * a date for older), each row linking to its order (/orders?order=<id>). Its key sits under
 * qk.trades, which the socket invalidates on every fill and after a reconnect.
 *
 * data-testid: trades-page, trades-table, trades-row-<tradeId> (cells: trades-time, trades-symbol,
 * trades-side, trades-qty, trades-price, trades-value, trades-order), trades-load-more,
 * trades-end, trades-empty, trades-error, trades-filter, trades-filter-clear (on a phone the rows are cards with the same ids). */
import { useInfiniteQuery } from '@tanstack/react-query';
import { memo, useMemo } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api } from '@/api/client';
import { useInstrument } from '@/api/queries';
import { qk } from '@/api/queryClient';
import type { Page, Trade } from '@/api/types';
import { Button, cx, Empty, ErrorNote } from '@/components/ui';
import { dec, formatAmount, formatDateTime, formatPrice, formatQty, formatTime } from '@/lib/format';
import { sideTone } from '@/lib/side';
import { useIsPhone } from '@/lib/useMedia';
import { flattenTrades, nextCursor, shortId, TRADE_PAGE } from './pages';

const TH = 'px-2 py-1.5 text-xs font-medium text-muted whitespace-nowrap';
const TD = 'px-2 py-1.5 whitespace-nowrap';

const TradeRow = memo(function TradeRow({ t }: { t: Trade }) {
  const instrument = useInstrument(t.instrument_id).data;
  const tick = instrument?.tick_size;
  return (
    <tr className="border-t border-line hover:bg-raised" data-testid={`trades-row-${t.id}`}>
      <td className={cx(TD, 'num text-muted')} data-testid="trades-time" title={formatDateTime(t.traded_at)}>
        <time dateTime={t.traded_at}>{formatTime(t.traded_at)}</time>
      </td>
      <td className={cx(TD, 'font-medium')} data-testid="trades-symbol">
        {instrument?.symbol ?? `#${t.instrument_id}`}
      </td>
      <td className={cx(TD, 'font-semibold', sideTone(t.side))} data-testid="trades-side">
        {t.side}
      </td>
      <td className={cx(TD, 'num text-right')} data-testid="trades-qty">
        {formatQty(t.quantity)}
      </td>
      <td className={cx(TD, 'num text-right')} data-testid="trades-price">
        {formatPrice(t.price, tick)}
      </td>
      <td className={cx(TD, 'num text-right')} data-testid="trades-value">
        {formatAmount(dec(t.price).times(t.quantity).toString())}
      </td>
      <td className={TD}>
        <Link to={`/orders?order=${t.order_id}`} className="font-mono text-xs text-accent hover:underline" data-testid="trades-order" title={`Order ${t.order_id}`}>
          {shortId(t.order_id)}
        </Link>
      </td>
    </tr>
  );
});

/** The phone's form of a row: two lines, the same test ids. */
const TradeCard = memo(function TradeCard({ t }: { t: Trade }) {
  const instrument = useInstrument(t.instrument_id).data;
  return (
    <li className="flex items-center gap-3 border-t border-line px-3 py-2 first:border-t-0" data-testid={`trades-row-${t.id}`}>
      <div className="min-w-0 flex-1">
        <div className="flex items-center gap-2">
          <span className={cx('text-xs font-semibold', sideTone(t.side))} data-testid="trades-side">
            {t.side}
          </span>
          <span className="truncate font-medium" data-testid="trades-symbol">
            {instrument?.symbol ?? `#${t.instrument_id}`}
          </span>
        </div>
        <div className="num text-xs text-muted">
          <time dateTime={t.traded_at} data-testid="trades-time">
            {formatTime(t.traded_at)}
          </time>{' '}
          · order{' '}
          <Link to={`/orders?order=${t.order_id}`} className="font-mono text-accent" data-testid="trades-order">
            {shortId(t.order_id)}
          </Link>
        </div>
      </div>
      <div className="num text-right">
        <div>
          <span data-testid="trades-qty">{formatQty(t.quantity)}</span> @ <span data-testid="trades-price">{formatPrice(t.price, instrument?.tick_size)}</span>
        </div>
        <div className="text-xs text-muted" data-testid="trades-value">
          {formatAmount(dec(t.price).times(t.quantity).toString())}
        </div>
      </div>
    </li>
  );
});

export default function TradesPage() {
  const phone = useIsPhone();
  const [params, setParams] = useSearchParams();
  const orderId = params.get('order_id');
  const book = useInfiniteQuery({
    queryKey: [...qk.trades, 'book', orderId ?? 'all'],
    queryFn: ({ pageParam, signal }) =>
      api.get<Page<Trade>>('/trades', { query: { limit: TRADE_PAGE, cursor: pageParam, order_id: orderId }, signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: nextCursor,
  });
  const trades = useMemo(() => flattenTrades(book.data?.pages), [book.data]);

  return (
    <section className="flex flex-col gap-3 p-3 md:p-4" data-testid="trades-page">
      <div className="flex flex-wrap items-center gap-3">
        <h1 className="text-base font-semibold">Trades</h1>
        {orderId && (
          <span className="inline-flex items-center gap-2 rounded border border-line bg-raised px-2 py-0.5 text-xs" data-testid="trades-filter">
            Fills of order <span className="font-mono">{shortId(orderId)}</span>
            <button type="button" className="text-accent hover:underline" onClick={() => setParams({})} data-testid="trades-filter-clear">
              show all
            </button>
          </span>
        )}
      </div>
      <div className="overflow-x-auto rounded border border-line bg-surface">
        {book.error ? (
          <ErrorNote error={book.error} testId="trades-error" />
        ) : book.isPending ? (
          <Empty>Loading…</Empty>
        ) : trades.length === 0 ? (
          <Empty testId="trades-empty">No trades yet.</Empty>
        ) : phone ? (
          <ul data-testid="trades-table">
            {trades.map((t) => (
              <TradeCard key={t.id} t={t} />
            ))}
          </ul>
        ) : (
          <table className="w-full border-collapse" data-testid="trades-table">
            <thead className="bg-raised text-left">
              <tr>
                <th className={TH}>Time</th>
                <th className={TH}>Instrument</th>
                <th className={TH}>Side</th>
                <th className={cx(TH, 'text-right')}>Qty</th>
                <th className={cx(TH, 'text-right')}>Price</th>
                <th className={cx(TH, 'text-right')}>Value</th>
                <th className={TH}>Order</th>
              </tr>
            </thead>
            <tbody>
              {trades.map((t) => (
                <TradeRow key={t.id} t={t} />
              ))}
            </tbody>
          </table>
        )}
      </div>
      {book.hasNextPage ? (
        <div className="flex justify-center">
          <Button onClick={() => book.fetchNextPage()} disabled={book.isFetchingNextPage} data-testid="trades-load-more">
            {book.isFetchingNextPage ? 'Loading…' : 'Load more'}
          </Button>
        </div>
      ) : (
        trades.length > 0 && (
          <p className="text-center text-xs text-muted" data-testid="trades-end">
            {trades.length} trade{trades.length === 1 ? '' : 's'}, no more.
          </p>
        )
      )}
    </section>
  );
}
