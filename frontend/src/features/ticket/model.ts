/** The order ticket's form, its validation (what the API would refuse, said before sending), and
 * the request body. Prices stay decimal strings; arithmetic in big.js. */
import Big from 'big.js';
import type { Instrument, NewOrder } from '@/api/types';

export type OrderType = 'MARKET' | 'LIMIT' | 'STOP' | 'STOP_LIMIT';
export type Product = 'MIS' | 'NRML' | 'CNC';
export type Validity = 'DAY' | 'IOC';

export interface TicketForm {
  side: 'BUY' | 'SELL';
  lots: string;
  orderType: OrderType;
  limitPrice: string;
  stopPrice: string;
  product: Product;
  validity: Validity;
}

export type TicketErrors = Partial<Record<'quantity' | 'limit_price' | 'stop_price' | 'product' | 'time_in_force' | 'order_type', string>>;

export const needsLimit = (t: OrderType) => t === 'LIMIT' || t === 'STOP_LIMIT';
export const needsStop = (t: OrderType) => t === 'STOP' || t === 'STOP_LIMIT';

function parseDecimal(text: string): Big | null {
  if (!/^\d+(\.\d+)?$/.test(text.trim())) return null;
  return new Big(text.trim());
}

/** Whether `price` is a whole number of ticks. */
export function onTick(price: Big, tick: string): boolean {
  const t = new Big(tick || '0.01');
  return t.eq(0) || price.mod(t).eq(0);
}

/** `price` moved by `steps` ticks, kept on the tick grid and above zero. */
export function stepPrice(price: string, tick: string, steps: number): string {
  const t = new Big(tick || '0.01');
  const p = parseDecimal(price) ?? new Big(0);
  let next: Big;
  if (onTick(p, tick)) next = p.plus(t.times(steps));
  else if (steps > 0) next = p.div(t).round(0, Big.roundUp).times(t).plus(t.times(steps - 1));
  else next = p.div(t).round(0, Big.roundDown).times(t).plus(t.times(steps + 1));
  if (next.lte(0)) next = t;
  const dp = Math.max(2, (tick.split('.')[1] ?? '').replace(/0+$/, '').length);
  return next.toFixed(dp);
}

export function quantityOf(form: Pick<TicketForm, 'lots'>, instrument: Pick<Instrument, 'lot_size'>): number {
  const lots = Number(form.lots);
  return Number.isInteger(lots) ? lots * (instrument.lot_size || 1) : NaN;
}

/** Field errors to show before sending; empty when the ticket may be sent. */
export function validateTicket(form: TicketForm, instrument: Pick<Instrument, 'lot_size' | 'tick_size' | 'freeze_quantity' | 'active'>): TicketErrors {
  const errors: TicketErrors = {};
  const lots = form.lots.trim();
  if (!/^\d+$/.test(lots) || Number(lots) < 1) errors.quantity = 'Enter a whole number of lots (1 or more)';
  else if (instrument.active === false) errors.quantity = 'This instrument is no longer traded';
  const tick = instrument.tick_size || '0.01';
  const check = (field: 'limit_price' | 'stop_price', text: string, label: string) => {
    const p = parseDecimal(text);
    if (!text.trim()) errors[field] = `${label} is required for this order type`;
    else if (!p || p.lte(0)) errors[field] = `${label} must be a positive number`;
    else if (!onTick(p, tick)) errors[field] = `${label} must be a multiple of the tick size ${tick}`;
  };
  if (needsLimit(form.orderType)) check('limit_price', form.limitPrice, 'Price');
  if (needsStop(form.orderType)) check('stop_price', form.stopPrice, 'Trigger price');
  return errors;
}

/** The POST /orders body; prices only for the types that take them. */
export function orderBody(form: TicketForm, instrument: Pick<Instrument, 'id' | 'lot_size'>, clientOrderId?: string): NewOrder {
  const body: NewOrder = {
    instrument_id: instrument.id,
    side: form.side,
    quantity: quantityOf(form, instrument),
    order_type: form.orderType,
    product: form.product,
    time_in_force: form.validity,
  };
  if (needsLimit(form.orderType)) body.limit_price = form.limitPrice.trim();
  if (needsStop(form.orderType)) body.stop_price = form.stopPrice.trim();
  if (clientOrderId) body.client_order_id = clientOrderId;
  return body;
}

/** A fresh id for one ticket: a double click sends the same id twice, and the API returns the
 * first order instead of placing another. */
export function newClientOrderId(): string {
  const uuid = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `t-${uuid}`;
}

/** A one-line summary for the confirmation: "BUY 50 RELIANCE LIMIT @ 101.25 MIS DAY". */
export function describeOrder(form: TicketForm, instrument: Pick<Instrument, 'symbol' | 'lot_size'>): string {
  const qty = quantityOf(form, instrument);
  const price = needsLimit(form.orderType) ? ` @ ${form.limitPrice}` : form.orderType === 'STOP' ? '' : ' at market';
  const trigger = needsStop(form.orderType) ? ` trigger ${form.stopPrice}` : '';
  return `${form.side} ${qty} ${instrument.symbol} ${form.orderType.replace('_', '-')}${price}${trigger} ${form.product} ${form.validity}`;
}
