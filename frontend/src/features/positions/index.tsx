/** Positions page (/positions): net and day views with live P&L from the quote store, totals,
 * close one (a MARKET order of the opposite side for the whole quantity, confirmed) and close all
 * (DELETE /positions, confirmed "Close N positions?"). The lists use qk.positionList(view), which
 * the socket keeps live and re-reads after a reconnect.
 *
 * data-testid: positions-page, positions-view (-net, -day), positions-totals, positions-total-pnl,
 * positions-total-realized, positions-total-unrealized, positions-total-partial, positions-table,
 * positions-row-<instrumentId>-<product> (cells: positions-symbol, positions-product, positions-qty,
 * positions-avg, positions-ltp, positions-unrealized, positions-realized, positions-pnl,
 * positions-buy-qty, positions-buy-avg, positions-sell-qty, positions-sell-avg; button
 * positions-close), positions-close-all, positions-empty, positions-error, positions-close-error,
 * positions-close-all-result (on a phone the rows are cards with the same ids); dialogs: confirm, confirm-ok, confirm-cancel. */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { usePositions } from '@/api/queries';
import { qk } from '@/api/queryClient';
import type { DayPosition, Order, Position } from '@/api/types';
import { Button, ConfirmDialog, Empty, ErrorNote, Segmented } from '@/components/ui';
import { useLiveQuotes } from '@/features/live';
import { formatQty } from '@/lib/format';
import { useIsPhone } from '@/lib/useMedia';
import { useUiStore } from '@/stores/ui';
import { DayCards, DayTable } from './DayTable';
import { describeError } from './describeError';
import { NetCards, NetTable } from './NetTable';
import { closeAllTitle, closeOrderFor, describeClose, newClientOrderId, openPositions, type CloseOrder } from './pnl';
import { TotalsBar } from './Totals';

interface Skipped {
  instrument_id: number;
  product: string;
  quantity: number;
  error: { code: string; message: string };
}
interface CloseAllAnswer {
  orders: Order[];
  skipped: Skipped[];
}
interface Closing {
  position: Position;
  order: CloseOrder;
  clientOrderId: string;
}

const VIEWS = [
  { value: 'net', label: 'Net' },
  { value: 'day', label: 'Day' },
] as const;

function useCloseOne(onDone: () => void) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (c: Closing) => api.post<Order>('/orders', { ...c.order, client_order_id: c.clientOrderId }),
    onSuccess: (_order, c) => {
      toast.success(`${describeClose(c.order, c.position.symbol, formatQty)}: order sent`);
      client.invalidateQueries({ queryKey: qk.orders });
      client.invalidateQueries({ queryKey: qk.positions });
      onDone();
    },
  });
}

function useCloseAll(onDone: (answer: CloseAllAnswer) => void) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api.del<CloseAllAnswer>('/positions'),
    onSuccess: (answer) => {
      const n = answer.orders.length;
      toast.success(`${n} exit order${n === 1 ? '' : 's'} sent`);
      client.invalidateQueries({ queryKey: qk.orders });
      client.invalidateQueries({ queryKey: qk.positions });
      onDone(answer);
    },
  });
}

function SkippedNote({ answer, symbols }: { answer: CloseAllAnswer | null; symbols: Map<number, string> }) {
  if (!answer || answer.skipped.length === 0) return null;
  return (
    <div role="status" className="rounded border border-warn/40 bg-warn/10 p-2 text-xs text-warn" data-testid="positions-close-all-result">
      <p className="font-medium">Not closed:</p>
      <ul className="list-disc pl-5">
        {answer.skipped.map((s) => (
          <li key={`${s.instrument_id}-${s.product}`}>
            {symbols.get(s.instrument_id) ?? `#${s.instrument_id}`} ({s.product}): {s.error.message}
          </li>
        ))}
      </ul>
    </div>
  );
}

export default function PositionsPage() {
  const phone = useIsPhone();
  const view = useUiStore((s) => s.positionsView);
  const setView = useUiStore((s) => s.setPositionsView);
  const net = usePositions('net');
  const day = usePositions('day');
  const netRows = useMemo(() => net.data?.items ?? [], [net.data]);
  const dayRows = useMemo(() => (day.data?.items ?? []) as DayPosition[], [day.data]);
  const shown = view === 'net' ? net : day;
  const rows: readonly (Position | DayPosition)[] = view === 'net' ? netRows : dayRows;
  const held = useMemo(() => openPositions(netRows), [netRows]);
  const symbols = useMemo(() => new Map([...netRows, ...dayRows].map((p) => [p.instrument_id, p.symbol])), [netRows, dayRows]);

  useLiveQuotes(
    useMemo(() => [...new Set(rows.map((p) => p.instrument_id))].sort((a, b) => a - b), [rows]),
    'ltp',
  );

  const [closing, setClosing] = useState<Closing | null>(null);
  const [confirmAll, setConfirmAll] = useState(false);
  const [allAnswer, setAllAnswer] = useState<CloseAllAnswer | null>(null);
  const closeOne = useCloseOne(() => setClosing(null));
  const closeAll = useCloseAll((answer) => {
    setConfirmAll(false);
    setAllAnswer(answer);
  });

  const askClose = (position: Position) => {
    const order = closeOrderFor(position);
    if (!order) return;
    closeOne.reset();
    setClosing({ position, order, clientOrderId: newClientOrderId() });
  };

  return (
    <section className="flex flex-col gap-3 p-3 md:p-4" data-testid="positions-page">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <div className="flex items-center gap-3">
          <h1 className="text-base font-semibold">Positions</h1>
          <Segmented label="Positions view" value={view} options={VIEWS} onChange={setView} testId="positions-view" size="sm" />
        </div>
        <Button
          variant="danger"
          size="sm"
          disabled={held.length === 0}
          onClick={() => {
            closeAll.reset();
            setConfirmAll(true);
          }}
          data-testid="positions-close-all"
        >
          Close all{held.length ? ` (${held.length})` : ''}
        </Button>
      </div>

      <div className="rounded border border-line bg-surface p-3">
        <TotalsBar view={view} rows={rows} />
      </div>

      <SkippedNote answer={allAnswer} symbols={symbols} />

      <div className="overflow-x-auto rounded border border-line bg-surface">
        {shown.error ? (
          <ErrorNote error={shown.error} testId="positions-error" />
        ) : shown.isPending ? (
          <Empty>Loading…</Empty>
        ) : rows.length === 0 ? (
          <Empty testId="positions-empty">{view === 'net' ? 'No open positions.' : 'Nothing traded today.'}</Empty>
        ) : view === 'net' ? (
          phone ? <NetCards rows={netRows} onClose={askClose} /> : <NetTable rows={netRows} onClose={askClose} />
        ) : phone ? (
          <DayCards rows={dayRows} />
        ) : (
          <DayTable rows={dayRows} />
        )}
      </div>

      <ConfirmDialog
        open={closing !== null}
        title={closing ? `Close ${closing.position.symbol} (${closing.position.product})?` : ''}
        body={
          closing && (
            <div className="space-y-2">
              <p>
                {describeClose(closing.order, closing.position.symbol, formatQty)} to close this {closing.position.quantity > 0 ? 'long' : 'short'} position of{' '}
                {formatQty(closing.position.quantity)}.
              </p>
              {closeOne.error && (
                <p role="alert" className="text-danger" data-testid="positions-close-error">
                  {describeError(closeOne.error)}
                </p>
              )}
            </div>
          )
        }
        confirmLabel={closing ? `${closing.order.side === 'SELL' ? 'Sell' : 'Buy'} ${formatQty(closing.order.quantity)} at market` : 'Close'}
        busy={closeOne.isPending}
        onConfirm={() => closing && closeOne.mutate(closing)}
        onCancel={() => setClosing(null)}
      />

      <ConfirmDialog
        open={confirmAll}
        title={closeAllTitle(held.length)}
        body={
          <div className="space-y-2">
            <p>Market orders will flatten:</p>
            <ul className="list-disc pl-5">
              {held.map((p) => (
                <li key={`${p.instrument_id}-${p.product}`}>
                  {describeClose(closeOrderFor(p) as CloseOrder, p.symbol, formatQty)}
                </li>
              ))}
            </ul>
            {closeAll.error && (
              <p role="alert" className="text-danger" data-testid="positions-close-error">
                {describeError(closeAll.error)}
              </p>
            )}
          </div>
        }
        confirmLabel={`Close ${held.length}`}
        busy={closeAll.isPending}
        onConfirm={() => closeAll.mutate()}
        onCancel={() => setConfirmAll(false)}
      />
    </section>
  );
}
