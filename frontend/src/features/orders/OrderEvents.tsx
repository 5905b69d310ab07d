/** The order's audit trail (GET /orders/{id}/events) in a side panel. */
import { useQuery } from '@tanstack/react-query';
import { api } from '@/api/client';
import { qk } from '@/api/queryClient';
import type { Order, OrderEvent } from '@/api/types';
import { Badge, ErrorNote } from '@/components/ui';
import { formatDateTime, formatPrice, formatQty } from '@/lib/format';
import { STATUS_TONE } from './status';

export function OrderEvents({ orderId, order, onClose }: { orderId: string; order: Order | undefined; onClose: () => void }) {
  const events = useQuery({
    queryKey: qk.orderEvents(orderId),
    queryFn: () => api.get<{ items: OrderEvent[] }>(`/orders/${orderId}/events`),
  });
  const one = useQuery({ queryKey: qk.order(orderId), queryFn: () => api.get<Order>(`/orders/${orderId}`), initialData: order, enabled: !order });
  const o = order ?? one.data;
  return (
    <aside className="flex h-full w-full flex-col border-l border-line bg-surface md:w-96" aria-label="Order audit trail" data-testid="order-events">
      <div className="flex items-center justify-between border-b border-line px-3 py-2">
        <div>
          <div className="font-semibold">{o ? `${o.side} ${formatQty(o.quantity)} ${o.symbol}` : 'Order'}</div>
          <div className="text-xs text-muted" data-testid="order-events-id">
            {orderId}
          </div>
        </div>
        <button type="button" onClick={onClose} aria-label="Close audit trail" className="px-2 text-lg" data-testid="order-events-close">
          ✕
        </button>
      </div>
      {o && (
        <dl className="grid grid-cols-2 gap-x-3 gap-y-1 border-b border-line px-3 py-2 text-xs">
          <dt className="text-muted">Status</dt>
          <dd>
            <Badge tone={STATUS_TONE[o.status]}>{o.status}</Badge>
          </dd>
          <dt className="text-muted">Filled / qty</dt>
          <dd className="num">
            {formatQty(o.filled_quantity)} / {formatQty(o.quantity)}
          </dd>
          <dt className="text-muted">Avg price</dt>
          <dd className="num">{formatPrice(o.average_price)}</dd>
          <dt className="text-muted">Type</dt>
          <dd>
            {o.order_type} {o.limit_price ? `@ ${o.limit_price}` : ''} {o.stop_price ? `trigger ${o.stop_price}` : ''}
          </dd>
          <dt className="text-muted">Client id</dt>
          <dd className="truncate">{o.client_order_id ?? '—'}</dd>
          {o.reject_reason && (
            <>
              <dt className="text-muted">Reason</dt>
              <dd className="text-danger">{o.reject_reason}</dd>
            </>
          )}
        </dl>
      )}
      <ErrorNote error={events.error} />
      <ol className="flex-1 overflow-auto px-3 py-2" data-testid="order-events-list">
        {events.isLoading && <li className="text-muted">Loading…</li>}
        {events.data?.items.map((e) => (
          <li key={e.id} className="relative border-l border-line pb-3 pl-4" data-testid="order-event">
            <span className="absolute -left-1 top-1.5 h-2 w-2 rounded-full bg-accent" aria-hidden />
            <div className="flex items-center gap-2">
              <span className="font-medium">{e.event}</span>
              {e.to_status && <Badge tone={STATUS_TONE[e.to_status as Order['status']] ?? 'muted'}>{e.to_status}</Badge>}
            </div>
            <div className="text-xs text-muted">
              {formatDateTime(e.ts)} · {e.actor}
              {e.actor_id ? ` (${e.actor_id})` : ''}
            </div>
            {e.reason && <div className="text-xs">{e.reason}</div>}
            {e.details && Object.keys(e.details).length > 0 && (
              <div className="num break-all text-[11px] text-muted">
                {Object.entries(e.details as Record<string, unknown>)
                  .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
                  .join('  ')}
              </div>
            )}
          </li>
        ))}
      </ol>
    </aside>
  );
}
