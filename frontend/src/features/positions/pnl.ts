/** Position arithmetic, pure and exact (big.js via `dec`, never floats): the live mark, the
 * unrealized and day P&L of a row, the page's totals, and the market order that closes a position. */
import type { DayPosition, NewOrder, Position } from '@/api/types';
import { dec } from '@/lib/format';

type Dec = string | null | undefined;

function present(v: Dec): v is string {
  return v !== null && v !== undefined && v !== '' && Number.isFinite(Number(v));
}

/** The price a row is marked at: the live quote's last price, else the server's last price. */
export function markPrice(liveLtp: Dec, serverLast: Dec): string | null {
  if (present(liveLtp)) return liveLtp;
  if (present(serverLast)) return serverLast;
  return null;
}

/** Unrealized P&L of a net position: (ltp - avg) * qty, signed (a short gains when the price
 * falls). Flat: 0. No price or no average: null (shown as a dash, never 0). */
export function unrealizedPnl(quantity: number, averagePrice: Dec, ltp: Dec): string | null {
  if (quantity === 0) return '0';
  if (!present(averagePrice) || !present(ltp)) return null;
  return dec(ltp).minus(averagePrice).times(quantity).toString();
}

/** realized + unrealized; null when the unrealized part is unknown. */
export function totalPnl(realized: Dec, unrealized: string | null): string | null {
  if (unrealized === null) return null;
  return dec(present(realized) ? realized : '0')
    .plus(unrealized)
    .toString();
}

/** A day row's mark-to-market P&L: what was sold minus what was bought today, plus today's net
 * quantity at the last price. Null when a quantity is open and there is no price. */
export function dayPnl(row: Pick<DayPosition, 'buy_value' | 'sell_value' | 'quantity'>, ltp: Dec): string | null {
  const booked = dec(row.sell_value || '0').minus(row.buy_value || '0');
  if (row.quantity === 0) return booked.toString();
  if (!present(ltp)) return null;
  return booked.plus(dec(ltp).times(row.quantity)).toString();
}

export interface Totals {
  /** sum of the rows' P&L that are known */
  pnl: string;
  realized: string;
  unrealized: string;
  /** rows whose P&L could not be computed (no price yet) */
  unknown: number;
}

/** Net view totals with live marks (`ltpOf(instrumentId)` reads the quote store). */
export function netTotals(rows: readonly Position[], ltpOf: (id: number) => Dec): Totals {
  let realized = dec(0);
  let unrealized = dec(0);
  let unknown = 0;
  for (const p of rows) {
    if (present(p.realized_pnl)) realized = realized.plus(p.realized_pnl);
    const u = unrealizedPnl(p.quantity, p.average_price, markPrice(ltpOf(p.instrument_id), p.last_price));
    if (u === null) unknown += 1;
    else unrealized = unrealized.plus(u);
  }
  return { pnl: realized.plus(unrealized).toString(), realized: realized.toString(), unrealized: unrealized.toString(), unknown };
}

/** Day view totals: the day's realized P&L and the day's mark-to-market P&L. */
export function dayTotals(rows: readonly DayPosition[], ltpOf: (id: number) => Dec): Totals {
  let realized = dec(0);
  let pnl = dec(0);
  let unknown = 0;
  for (const r of rows) {
    if (present(r.realized_pnl)) realized = realized.plus(r.realized_pnl);
    const m = dayPnl(r, markPrice(ltpOf(r.instrument_id), r.last_price));
    if (m === null) unknown += 1;
    else pnl = pnl.plus(m);
  }
  return { pnl: pnl.toString(), realized: realized.toString(), unrealized: pnl.minus(realized).toString(), unknown };
}

export type CloseOrder = Required<Pick<NewOrder, 'instrument_id' | 'side' | 'quantity' | 'order_type' | 'product' | 'time_in_force'>>;

/** The MARKET order that flattens a position (opposite side, its whole quantity, its product);
 * null for a flat one. */
export function closeOrderFor(p: Pick<Position, 'instrument_id' | 'quantity' | 'product'>): CloseOrder | null {
  if (!p.quantity) return null;
  return {
    instrument_id: p.instrument_id,
    side: p.quantity > 0 ? 'SELL' : 'BUY',
    quantity: Math.abs(p.quantity),
    order_type: 'MARKET',
    product: p.product as CloseOrder['product'],
    time_in_force: 'DAY',
  };
}

/** What closing does, in words: "Sell 50 RELIANCE (MIS) at market". */
export function describeClose(order: CloseOrder, symbol: string, formatQty: (n: number) => string): string {
  const verb = order.side === 'SELL' ? 'Sell' : 'Buy';
  return `${verb} ${formatQty(order.quantity)} ${symbol} (${order.product}) at market`;
}

/** "Close 1 position?" / "Close 3 positions?" */
export function closeAllTitle(n: number): string {
  return `Close ${n} position${n === 1 ? '' : 's'}?`;
}

/** The positions close-all would act on: those still held (quantity not 0). */
export function openPositions<T extends Pick<Position, 'quantity'>>(rows: readonly T[]): T[] {
  return rows.filter((p) => p.quantity !== 0);
}

/** A client order id for an exit: generated once per confirmation, so a second click of the same
 * confirmation returns the first order instead of placing another. Works without a secure context
 * (crypto.randomUUID needs one; getRandomValues does not). */
export function newClientOrderId(prefix = 'close'): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
