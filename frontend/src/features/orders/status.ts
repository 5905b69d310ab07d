/** Order statuses as the trader reads them. */
import type { Order, OrderStatus } from '@/api/types';
import { isWorking } from '@/api/types';

export const STATUS_TONE: Record<OrderStatus, 'up' | 'down' | 'warn' | 'muted' | 'accent'> = {
  PENDING: 'muted',
  SUBMITTED: 'muted',
  OPEN: 'accent',
  PARTIALLY_FILLED: 'warn',
  FILLED: 'up',
  CANCEL_PENDING: 'warn',
  CANCELLED: 'muted',
  MODIFY_PENDING: 'warn',
  REJECTED: 'down',
  EXPIRED: 'muted',
};

export function splitOrders(orders: readonly Order[]): { working: Order[]; completed: Order[] } {
  const working: Order[] = [];
  const completed: Order[] = [];
  for (const o of orders) (isWorking(o.status) ? working : completed).push(o);
  return { working, completed };
}

/** Whether an order can be modified (quantity or prices) now. */
export function canModify(o: Order): boolean {
  return (o.status === 'OPEN' || o.status === 'PARTIALLY_FILLED') && o.order_type !== 'MARKET';
}
export function canCancel(o: Order): boolean {
  return isWorking(o.status) && o.status !== 'CANCEL_PENDING';
}

/** The toast for an order's change, or null when the change is not worth one. */
export function toastFor(order: Order, previous: Order | undefined): { kind: 'success' | 'error' | 'info'; text: string } | null {
  if (previous && previous.status === order.status && previous.filled_quantity === order.filled_quantity) return null;
  const what = `${order.side} ${order.quantity} ${order.symbol}`;
  switch (order.status) {
    case 'FILLED':
      return { kind: 'success', text: `Filled: ${what} @ ${order.average_price ?? '—'}` };
    case 'PARTIALLY_FILLED':
      return { kind: 'info', text: `Partly filled: ${order.filled_quantity}/${order.quantity} ${order.symbol}` };
    case 'REJECTED':
      return { kind: 'error', text: `Rejected: ${what}${order.reject_reason ? ` — ${order.reject_reason}` : ''}` };
    case 'CANCELLED':
      return { kind: 'info', text: `Cancelled: ${what}` };
    case 'EXPIRED':
      return { kind: 'info', text: `Expired: ${what}` };
    default:
      return null;
  }
}
