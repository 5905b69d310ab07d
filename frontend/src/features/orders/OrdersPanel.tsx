/** Orders: working and completed tabs, live from the socket; modify in place, cancel, cancel all
 * (confirmed, naming the count), and the audit trail in a side panel (?order=<id>). */
import { useState } from 'react';
import { useSearchParams } from 'react-router';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { useOrders } from '@/api/queries';
import { qk } from '@/api/queryClient';
import type { Order } from '@/api/types';
import { Badge, Button, ConfirmDialog, cx, Empty, ErrorNote, Tabs } from '@/components/ui';
import { applyOrderMessage } from '@/features/live/cache';
import { formatPrice, formatQty, formatTime } from '@/lib/format';
import { sideTone } from '@/lib/side';
import { useIsPhone } from '@/lib/useMedia';
import { useUiStore } from '@/stores/ui';
import { ModifyRow } from './ModifyRow';
import { OrderEvents } from './OrderEvents';
import { canCancel, canModify, splitOrders, STATUS_TONE } from './status';

const COLS = 10;

function OrderRow({ o, editing, onEdit, onTrail, onCancel, cancelling, compact }: { o: Order; editing: boolean; onEdit: () => void; onTrail: () => void; onCancel: () => void; cancelling: boolean; compact?: boolean }) {
  return (
    <tr className={cx('border-b border-line hover:bg-raised', editing && 'bg-raised')} data-testid={`orders-row-${o.id}`} data-status={o.status} data-symbol={o.symbol}>
      <td className="num whitespace-nowrap px-2 py-1.5 text-muted" title={o.created_at}>
        {formatTime(o.created_at)}
      </td>
      <td className="px-2 font-medium">
        <button type="button" className="hover:underline" onClick={onTrail} data-testid="orders-symbol">
          {o.symbol}
        </button>
        {!compact && <span className="ml-1 text-xs text-muted">{o.exchange_segment}</span>}
      </td>
      <td className={cx('px-2 font-semibold', sideTone(o.side))} data-testid="orders-side">
        {o.side}
      </td>
      <td className="px-2 text-xs">
        {o.order_type.replace('_', '-')} <span className="text-muted">{o.product}</span>
      </td>
      <td className="num px-2 text-right" data-testid="orders-filled">
        {formatQty(o.filled_quantity)} / {formatQty(o.quantity)}
      </td>
      <td className="num px-2 text-right" data-testid="orders-price">
        {o.limit_price ? formatPrice(o.limit_price) : o.order_type === 'MARKET' || o.order_type === 'STOP' ? 'MKT' : '—'}
        {o.stop_price && <span className="block text-[11px] text-muted">trg {formatPrice(o.stop_price)}</span>}
      </td>
      <td className="num px-2 text-right" data-testid="orders-avg">
        {formatPrice(o.average_price)}
      </td>
      <td className="px-2">
        <Badge tone={STATUS_TONE[o.status]} data-testid="orders-status" title={o.reject_reason ?? undefined}>
          {o.status.replace('_', ' ')}
        </Badge>
      </td>
      <td className="max-w-48 truncate px-2 text-xs text-danger" title={o.reject_reason ?? undefined}>
        {o.reject_reason}
      </td>
      <td className="whitespace-nowrap px-2 text-right">
        {canModify(o) && (
          <Button size="sm" variant="ghost" onClick={onEdit} data-testid="orders-modify" aria-label={`Modify ${o.symbol} order`}>
            Modify
          </Button>
        )}
        {canCancel(o) && (
          <Button size="sm" variant="ghost" className="text-danger" onClick={onCancel} disabled={cancelling} data-testid="orders-cancel" aria-label={`Cancel ${o.symbol} order`}>
            Cancel
          </Button>
        )}
        <Button size="sm" variant="ghost" onClick={onTrail} data-testid="orders-trail" aria-label={`Audit trail of ${o.symbol} order`}>
          Trail
        </Button>
      </td>
    </tr>
  );
}

/** The phone's order card: the same test ids as the table row. */
function OrderCard({ o, editing, onEdit, onTrail, onCancel, cancelling }: { o: Order; editing: boolean; onEdit: () => void; onTrail: () => void; onCancel: () => void; cancelling: boolean }) {
  return (
    <div className={cx('border-b border-line px-3 py-2', editing && 'bg-raised')} data-testid={`orders-row-${o.id}`} data-status={o.status} data-symbol={o.symbol}>
      <div className="flex items-center gap-2">
        <span className={cx('font-semibold', sideTone(o.side))} data-testid="orders-side">
          {o.side}
        </span>
        <button type="button" className="font-medium" onClick={onTrail} data-testid="orders-symbol">
          {o.symbol}
        </button>
        <span className="ml-auto">
          <Badge tone={STATUS_TONE[o.status]} data-testid="orders-status">
            {o.status.replace('_', ' ')}
          </Badge>
        </span>
      </div>
      <div className="num mt-0.5 flex flex-wrap gap-x-3 text-xs text-muted">
        <span>
          {o.order_type.replace('_', '-')} {o.product}
        </span>
        <span data-testid="orders-filled">
          {formatQty(o.filled_quantity)} / {formatQty(o.quantity)}
        </span>
        <span data-testid="orders-price">{o.limit_price ? `@ ${formatPrice(o.limit_price)}` : 'MKT'}</span>
        {o.stop_price && <span>trg {formatPrice(o.stop_price)}</span>}
        <span data-testid="orders-avg">avg {formatPrice(o.average_price)}</span>
        <span>{formatTime(o.created_at)}</span>
      </div>
      {o.reject_reason && <div className="text-xs text-danger">{o.reject_reason}</div>}
      <div className="mt-1 flex gap-1">
        {canModify(o) && (
          <Button size="sm" onClick={onEdit} data-testid="orders-modify">
            Modify
          </Button>
        )}
        {canCancel(o) && (
          <Button size="sm" className="text-danger" onClick={onCancel} disabled={cancelling} data-testid="orders-cancel">
            Cancel
          </Button>
        )}
        <Button size="sm" onClick={onTrail} data-testid="orders-trail">
          Trail
        </Button>
      </div>
    </div>
  );
}

export function OrdersPanel({ compact = false }: { compact?: boolean }) {
  const client = useQueryClient();
  const phone = useIsPhone();
  const orders = useOrders();
  const tab = useUiStore((s) => s.ordersTab);
  const setTab = useUiStore((s) => s.setOrdersTab);
  const [params, setParams] = useSearchParams();
  const trailId = params.get('order');
  const [editing, setEditing] = useState<string | null>(null);
  const [confirmAll, setConfirmAll] = useState(false);
  const { working, completed } = splitOrders(orders.data?.items ?? []);
  const rows = tab === 'working' ? working : completed;

  const cancel = useMutation({
    mutationFn: (id: string) => api.del<Order>(`/orders/${id}`),
    onSuccess: (o) => applyOrderMessage(client, o),
    onError: (err) => toast.error(`Cancel refused: ${(err as Error).message}`),
  });
  const cancelAll = useMutation({
    mutationFn: () => api.del<{ cancelled: string[] }>('/orders'),
    onSuccess: (r) => {
      toast.info(`Cancel requested for ${r.cancelled.length} order${r.cancelled.length === 1 ? '' : 's'}`);
      void client.invalidateQueries({ queryKey: qk.orders });
    },
    onError: (err) => toast.error(`Cancel all refused: ${(err as Error).message}`),
    onSettled: () => setConfirmAll(false),
  });
  const openTrail = (id: string) => {
    const next = new URLSearchParams(params);
    next.set('order', id);
    setParams(next);
  };
  const closeTrail = () => {
    const next = new URLSearchParams(params);
    next.delete('order');
    setParams(next);
  };
  const cancellable = working.filter(canCancel).length;

  return (
    <div className="flex min-h-0 flex-1 flex-col" data-testid="orders">
      <div className="flex shrink-0 items-center justify-between gap-2 px-2">
        <Tabs
          label="Orders"
          value={tab}
          onChange={setTab}
          testId="orders-tabs"
          tabs={[
            { value: 'working', label: `Working (${working.length})` },
            { value: 'completed', label: `Completed (${completed.length})` },
          ]}
        />
        {tab === 'working' && (
          <Button size="sm" variant="ghost" className="text-danger" disabled={cancellable === 0} onClick={() => setConfirmAll(true)} data-testid="orders-cancel-all">
            Cancel all
          </Button>
        )}
      </div>
      <ErrorNote error={orders.error} />
      <div className="min-h-0 flex-1 overflow-auto">
        {orders.isLoading ? (
          <Empty>Loading orders…</Empty>
        ) : rows.length === 0 ? (
          <Empty testId="orders-empty">{tab === 'working' ? 'No working orders.' : 'No completed orders yet.'}</Empty>
        ) : phone ? (
          <ul data-testid={`orders-table-${tab}`}>
            {rows.map((o) => (
              <li key={o.id}>
                <OrderCard o={o} editing={editing === o.id} onEdit={() => setEditing(editing === o.id ? null : o.id)} onTrail={() => openTrail(o.id)} onCancel={() => cancel.mutate(o.id)} cancelling={cancel.isPending && cancel.variables === o.id} />
                {editing === o.id && canModify(o) && (
                  <table className="w-full">
                    <tbody>
                      <ModifyRow order={o} colSpan={1} onDone={() => setEditing(null)} />
                    </tbody>
                  </table>
                )}
              </li>
            ))}
          </ul>
        ) : (
          <table className="w-full min-w-[720px] text-left" data-testid={`orders-table-${tab}`}>
            <thead className="sticky top-0 z-10 bg-surface text-xs text-muted">
              <tr className="border-b border-line">
                <th className="px-2 py-1 font-medium">Time</th>
                <th className="px-2 font-medium">Instrument</th>
                <th className="px-2 font-medium">Side</th>
                <th className="px-2 font-medium">Type</th>
                <th className="px-2 text-right font-medium">Filled / qty</th>
                <th className="px-2 text-right font-medium">Price</th>
                <th className="px-2 text-right font-medium">Avg</th>
                <th className="px-2 font-medium">Status</th>
                <th className="px-2 font-medium">
                  <span className="sr-only">Reason</span>
                </th>
                <th className="px-2 font-medium">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((o) => [
                <OrderRow key={o.id} o={o} compact={compact} editing={editing === o.id} onEdit={() => setEditing(editing === o.id ? null : o.id)} onTrail={() => openTrail(o.id)} onCancel={() => cancel.mutate(o.id)} cancelling={cancel.isPending && cancel.variables === o.id} />,
                editing === o.id && canModify(o) ? <ModifyRow key={`${o.id}-m`} order={o} colSpan={COLS} onDone={() => setEditing(null)} /> : null,
              ])}
            </tbody>
          </table>
        )}
      </div>
      {trailId && (
        <div className="fixed inset-y-0 right-0 z-40 flex w-full shadow-2xl md:w-auto">
          <OrderEvents orderId={trailId} order={orders.data?.items.find((o) => o.id === trailId)} onClose={closeTrail} />
        </div>
      )}
      <ConfirmDialog
        open={confirmAll}
        title={`Cancel ${cancellable} open order${cancellable === 1 ? '' : 's'}?`}
        body="Every working order of yours is asked to cancel; fills that already happened stay."
        confirmLabel={`Cancel ${cancellable} order${cancellable === 1 ? '' : 's'}`}
        busy={cancelAll.isPending}
        onCancel={() => setConfirmAll(false)}
        onConfirm={() => cancelAll.mutate()}
        testId="orders-cancel-all-confirm"
      />
    </div>
  );
}
