/** The order ticket: side colours everywhere, lots x lot size, tick-stepped prices, product and
 * validity toggles, the margin estimate and available funds before sending, an optional
 * confirmation, and the API's answer where it belongs. One client_order_id per ticket: a double
 * click or a retry after a lost answer never places two orders. */
import { stateReason } from '@/features/funds/state';
import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { ApiError, NetworkError } from '@/api/errors';
import { useAccount } from '@/api/queries';
import { qk } from '@/api/queryClient';
import type { Instrument, MarginEstimate, Order } from '@/api/types';
import { Button, cx, Field, Input, Segmented } from '@/components/ui';
import { formatAmount, formatPrice, formatQty } from '@/lib/format';
import { useQuote } from '@/stores/quotes';
import { useUiStore } from '@/stores/ui';
import { describeOrder, needsLimit, needsStop, newClientOrderId, orderBody, quantityOf, validateTicket, type OrderType, type Product, type TicketForm, type Validity } from './model';
import { PriceInput } from './PriceInput';
import { describeRefusal, fieldErrors, type Refusal } from './refusal';
import { HaltedBanner, RefusalNote } from './RefusalNote';

const TYPES: { value: OrderType; label: string }[] = [
  { value: 'MARKET', label: 'Market' },
  { value: 'LIMIT', label: 'Limit' },
  { value: 'STOP', label: 'Stop' },
  { value: 'STOP_LIMIT', label: 'Stop-limit' },
];

function useEstimate(form: TicketForm, instrument: Instrument, valid: boolean) {
  const body = valid ? orderBody(form, instrument) : null;
  const [debounced, setDebounced] = useState(body);
  const key = JSON.stringify(body);
  useEffect(() => {
    const t = setTimeout(() => setDebounced(body), 250);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return useQuery({
    queryKey: ['estimate', JSON.stringify(debounced)],
    queryFn: () => api.post<MarginEstimate>('/orders/estimate', debounced),
    enabled: Boolean(debounced),
    staleTime: 5_000,
    retry: false,
    placeholderData: (prev) => prev,
  });
}

export function OrderTicket({ instrument, side: initialSide, onClose }: { instrument: Instrument; side: 'BUY' | 'SELL'; onClose: () => void }) {
  const client = useQueryClient();
  const navigate = useNavigate();
  const q = useQuote(instrument.id);
  const confirmOrders = useUiStore((s) => s.confirmOrders);
  const account = useAccount();
  const ids = useId();
  const [form, setForm] = useState<TicketForm>(() => ({
    side: initialSide,
    lots: '1',
    orderType: 'MARKET',
    limitPrice: '',
    stopPrice: '',
    product: 'MIS',
    validity: 'DAY',
  }));
  const clientOrderId = useRef(newClientOrderId());
  const [sending, setSending] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [touched, setTouched] = useState(false);
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [refusedAt, setRefusedAt] = useState(0);
  const inFlight = useRef(false);

  useEffect(() => setForm((f) => ({ ...f, side: initialSide })), [initialSide]);

  const local = useMemo(() => validateTicket(form, instrument), [form, instrument]);
  const valid = Object.keys(local).length === 0;
  const server = fieldErrors(refusal);
  const errors: Record<string, string | undefined> = { ...server, ...(touched ? local : {}) };
  const estimate = useEstimate(form, instrument, valid);
  const qty = quantityOf(form, instrument);
  const halted = refusal?.kind === 'halted' || account.data?.trading_state === 'HALTED';
  const buy = form.side === 'BUY';

  const update = (patch: Partial<TicketForm>) => {
    setForm((f) => {
      const next = { ...f, ...patch };
      // a price appears prefilled from the market when its field first shows
      const ref = (next.side === 'BUY' ? q?.ask : q?.bid) ?? q?.ltp;
      if (ref && needsLimit(next.orderType) && !next.limitPrice) next.limitPrice = formatPlain(ref, instrument.tick_size);
      if (ref && needsStop(next.orderType) && !next.stopPrice) next.stopPrice = formatPlain(ref, instrument.tick_size);
      return next;
    });
    if (refusal?.kind === 'fields' || refusal?.kind === 'risk') setRefusal(null);
    setConfirming(false);
  };

  async function send() {
    if (inFlight.current) return; // a second Enter or click while the first is under way
    inFlight.current = true;
    setSending(true);
    setRefusal(null);
    try {
      const order = await api.post<Order>('/orders', orderBody(form, instrument, clientOrderId.current), {
        headers: { 'Idempotency-Key': clientOrderId.current },
      });
      client.setQueryData(qk.order(order.id), order);
      void client.invalidateQueries({ queryKey: qk.orders });
      toast.success(`Order placed: ${order.side} ${formatQty(order.quantity)} ${order.symbol} ${order.order_type.replace('_', '-')} (${order.status})`, {
        id: `order-${order.id}`,
        action: { label: 'View', onClick: () => navigate(`/orders?order=${order.id}`) },
      });
      onClose();
    } catch (err) {
      // the outcome is known (any answer): the next send is a new order. A lost answer keeps the id.
      if (err instanceof ApiError && !(err instanceof NetworkError)) clientOrderId.current = newClientOrderId();
      setRefusal(describeRefusal(err));
      setRefusedAt(Date.now());
      setConfirming(false);
      if (err instanceof ApiError && err.status === 423) void client.invalidateQueries({ queryKey: qk.account });
    } finally {
      inFlight.current = false;
      setSending(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    setTouched(true);
    if (!valid || sending) return;
    if (confirmOrders && !confirming) {
      setConfirming(true);
      return;
    }
    void send();
  }

  const sideClass = buy ? 'bg-buy' : 'bg-sell';
  const est = estimate.data;
  return (
    <form onSubmit={submit} className="flex h-full flex-col" data-testid="ticket" data-side={form.side} noValidate>
      <div className={cx('flex items-center gap-3 px-4 py-3 text-white', sideClass)}>
        <div className="min-w-0 flex-1">
          <div className="truncate text-base font-semibold" id="ticket-title" data-testid="ticket-title">
            {buy ? 'Buy' : 'Sell'} {instrument.symbol}
          </div>
          <div className="text-xs">
            {instrument.exchange_segment} · LTP <span className="num" data-testid="ticket-ltp">{formatPrice(q?.ltp, instrument.tick_size)}</span>
          </div>
        </div>
        <div role="radiogroup" aria-label="Side" className="flex rounded bg-black/20 p-0.5">
          {(['BUY', 'SELL'] as const).map((s) => (
            <button key={s} type="button" role="radio" aria-checked={form.side === s} data-testid={`ticket-side-${s}`} onClick={() => update({ side: s })} className={cx('rounded px-2 py-0.5 text-xs font-bold', form.side === s ? 'bg-white text-black' : 'text-white')}>
              {s}
            </button>
          ))}
        </div>
        <button type="button" aria-label="Close ticket" onClick={onClose} className="text-lg leading-none opacity-90 hover:opacity-100" data-testid="ticket-close">
          ✕
        </button>
      </div>
      {halted && <HaltedBanner reason={refusal?.kind === 'halted' ? refusal.reason : account.data && stateReason(account.data)} message={refusal?.kind === 'halted' ? refusal.message : undefined} />}
      <div className="flex-1 space-y-3 overflow-auto p-4">
        <div className="flex flex-wrap items-center gap-2">
          <Segmented label="Order type" value={form.orderType} options={TYPES} onChange={(v) => update({ orderType: v })} testId="ticket-type" />
        </div>
        <div className="grid grid-cols-2 gap-3">
          <Field label={<>Lots <span className="font-normal">(lot size {formatQty(instrument.lot_size)})</span></>} htmlFor={`${ids}-lots`} error={errors.quantity} testId="ticket-quantity">
            <div className="flex">
              <button type="button" tabIndex={-1} aria-label="One lot less" className="w-8 shrink-0 rounded-l border border-r-0 border-line bg-raised" onClick={() => update({ lots: String(Math.max(1, (Number(form.lots) || 1) - 1)) })}>
                −
              </button>
              <Input id={`${ids}-lots`} inputMode="numeric" value={form.lots} aria-invalid={Boolean(errors.quantity)} data-testid="ticket-lots" onChange={(e) => update({ lots: e.target.value.replace(/\D/g, '') })} className="num rounded-none text-right" data-autofocus />
              <button type="button" tabIndex={-1} aria-label="One lot more" className="w-8 shrink-0 rounded-r border border-l-0 border-line bg-raised" onClick={() => update({ lots: String((Number(form.lots) || 0) + 1) })}>
                +
              </button>
            </div>
            <p className="text-xs text-muted" data-testid="ticket-qty">
              = {Number.isFinite(qty) ? formatQty(qty) : '—'} qty
            </p>
          </Field>
          {needsLimit(form.orderType) ? (
            <Field label={`Price (tick ${Number(instrument.tick_size)})`} htmlFor={`${ids}-price`} error={errors.limit_price} testId="ticket-price">
              <PriceInput id={`${ids}-price`} label="Price" value={form.limitPrice} onChange={(v) => update({ limitPrice: v })} tick={instrument.tick_size} invalid={Boolean(errors.limit_price)} testId="ticket-price" />
            </Field>
          ) : (
            <Field label="Price" htmlFor={`${ids}-price`}>
              <Input id={`${ids}-price`} disabled value={form.orderType === 'STOP' ? 'Market on trigger' : 'Market'} className="text-right" />
            </Field>
          )}
          {needsStop(form.orderType) && (
            <Field label="Trigger price" htmlFor={`${ids}-stop`} error={errors.stop_price} testId="ticket-stop">
              <PriceInput id={`${ids}-stop`} label="Trigger price" value={form.stopPrice} onChange={(v) => update({ stopPrice: v })} tick={instrument.tick_size} invalid={Boolean(errors.stop_price)} testId="ticket-stop" />
            </Field>
          )}
        </div>
        <div className="flex flex-wrap gap-4">
          <div className="space-y-1">
            <div className="text-xs font-medium text-muted">Product</div>
            <Segmented<Product> label="Product" value={form.product} options={['MIS', 'NRML', 'CNC']} onChange={(v) => update({ product: v })} testId="ticket-product" />
            {errors.product && <p role="alert" className="text-xs text-danger" data-testid="ticket-product-error">{errors.product}</p>}
          </div>
          <div className="space-y-1">
            <div className="text-xs font-medium text-muted">Validity</div>
            <Segmented<Validity> label="Validity" value={form.validity} options={['DAY', 'IOC']} onChange={(v) => update({ validity: v })} testId="ticket-validity" />
            {errors.time_in_force && <p role="alert" className="text-xs text-danger">{errors.time_in_force}</p>}
          </div>
        </div>
        {(errors.instrument_id || errors.order_type) && (
          <p role="alert" className="text-xs text-danger" data-testid="ticket-field-error">
            {errors.instrument_id || errors.order_type}
          </p>
        )}
        <RefusalNote refusal={refusal} at={refusedAt} />
        {confirming && (
          <div className="rounded border border-line bg-raised p-2" data-testid="ticket-confirm">
            <div className="font-medium">Send this order?</div>
            <div className="num" data-testid="ticket-confirm-text">
              {describeOrder(form, instrument)}
            </div>
            <div className="text-xs text-muted">Press Enter or Confirm to send; turn confirmations off in the user menu.</div>
          </div>
        )}
      </div>
      <div className="space-y-2 border-t border-line p-4">
        <div className="flex justify-between text-xs" data-testid="ticket-margin">
          <span className="text-muted">
            Margin required{' '}
            <b className={cx('num text-fg', est && !est.sufficient && 'text-danger')} data-testid="ticket-margin-required">
              {valid && est ? formatAmount(est.required_margin) : '—'}
            </b>
          </span>
          <span className="text-muted">
            Available{' '}
            <b className="num text-fg" data-testid="ticket-available">
              {est ? formatAmount(est.available) : '—'}
            </b>
          </span>
        </div>
        {est && valid && !est.sufficient && (
          <p className="text-xs text-danger" data-testid="ticket-insufficient">
            Not enough funds for this order.
          </p>
        )}
        <div className="flex gap-2">
          {confirming && (
            <Button onClick={() => setConfirming(false)} data-testid="ticket-back">
              Back
            </Button>
          )}
          <Button type="submit" variant={buy ? 'buy' : 'sell'} className="h-10 flex-1 text-sm" disabled={sending || halted} data-testid="ticket-submit" aria-busy={sending}>
            {sending ? 'Sending…' : `${confirming ? 'Confirm ' : ''}${buy ? 'Buy' : 'Sell'} ${instrument.symbol} ×${Number.isFinite(qty) ? formatQty(qty) : '—'}`}
          </Button>
        </div>
      </div>
    </form>
  );
}

/** A quote price as a plain input value on the tick grid's precision ("101.25", no grouping). */
function formatPlain(value: string, tick: string): string {
  const dp = Math.max(2, (tick.split('.')[1] ?? '').replace(/0+$/, '').length);
  return Number(value).toFixed(dp);
}
