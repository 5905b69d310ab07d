/** Modify an order in place: new total quantity and prices, sent as PATCH /orders/{id}. */
import { useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { api } from '@/api/client';
import { useInstrument } from '@/api/queries';
import { qk } from '@/api/queryClient';
import type { ModifyOrder, Order } from '@/api/types';
import { Button, Input } from '@/components/ui';
import { applyOrderMessage } from '@/features/live/cache';
import { needsLimit, needsStop, onTick } from '@/features/ticket/model';
import { PriceInput } from '@/features/ticket/PriceInput';
import { describeRefusal, fieldErrors, type Refusal } from '@/features/ticket/refusal';
import { HaltedBanner, RefusalNote } from '@/features/ticket/RefusalNote';
import Big from 'big.js';

export function modifyBody(order: Order, qty: string, limit: string, stop: string): { body: ModifyOrder; errors: Record<string, string> } {
  const body: ModifyOrder = {};
  const errors: Record<string, string> = {};
  const q = Number(qty);
  if (!/^\d+$/.test(qty) || q < 1) errors.quantity = 'Enter a whole quantity';
  else if (q <= order.filled_quantity) errors.quantity = `More than the ${order.filled_quantity} already filled`;
  else if (q !== order.quantity) body.quantity = q;
  const price = (text: string, field: 'limit_price' | 'stop_price', old: string | null) => {
    if (!/^\d+(\.\d+)?$/.test(text) || new Big(text).lte(0)) errors[field] = 'Enter a positive price';
    else if (old === null || !new Big(text).eq(old)) body[field] = text;
  };
  if (needsLimit(order.order_type as never)) price(limit, 'limit_price', order.limit_price);
  if (needsStop(order.order_type as never)) price(stop, 'stop_price', order.stop_price);
  return { body, errors };
}

export function ModifyRow({ order, onDone, colSpan }: { order: Order; onDone: () => void; colSpan: number }) {
  const client = useQueryClient();
  const instrument = useInstrument(order.instrument_id).data;
  const tick = instrument?.tick_size ?? '0.05';
  const lot = instrument?.lot_size ?? 1;
  const [qty, setQty] = useState(String(order.quantity));
  const [limit, setLimit] = useState(order.limit_price ?? '');
  const [stop, setStop] = useState(order.stop_price ?? '');
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [at, setAt] = useState(0);
  const [busy, setBusy] = useState(false);
  const { body, errors: local } = modifyBody(order, qty, limit, stop);
  if (!local.quantity && Number(qty) % lot !== 0) local.quantity = `A multiple of the lot size ${lot}`;
  for (const [f, v] of [['limit_price', limit], ['stop_price', stop]] as const) if (!local[f] && body[f] && !onTick(new Big(v), tick)) local[f] = `A multiple of the tick ${tick}`;
  const errors = { ...fieldErrors(refusal), ...local };
  const nothing = Object.keys(body).length === 0;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy || Object.keys(local).length || nothing) return;
    setBusy(true);
    try {
      const updated = await api.patch<Order>(`/orders/${order.id}`, body);
      applyOrderMessage(client, updated);
      void client.invalidateQueries({ queryKey: qk.orderEvents(order.id) });
      onDone();
    } catch (err) {
      setRefusal(describeRefusal(err));
      setAt(Date.now());
    } finally {
      setBusy(false);
    }
  }

  return (
    <tr className="bg-raised" data-testid={`orders-modify-${order.id}`}>
      <td colSpan={colSpan} className="p-2">
        {refusal?.kind === 'halted' && <HaltedBanner message={refusal.message} />}
        <form onSubmit={submit} className="flex flex-wrap items-end gap-3" onKeyDown={(e) => e.key === 'Escape' && (e.stopPropagation(), onDone())}>
          <label className="space-y-1">
            <span className="block text-xs text-muted">Quantity (lot {lot})</span>
            <Input className="num w-28 text-right" inputMode="numeric" value={qty} onChange={(e) => setQty(e.target.value.replace(/\D/g, ''))} data-testid="modify-quantity" aria-invalid={Boolean(errors.quantity)} autoFocus />
            {errors.quantity && <span role="alert" className="block text-xs text-danger" data-testid="modify-quantity-error">{errors.quantity}</span>}
          </label>
          {needsLimit(order.order_type as never) && (
            <div className="w-44 space-y-1">
              <span className="block text-xs text-muted">Price</span>
              <PriceInput id={`m-${order.id}-l`} label="Price" value={limit} onChange={setLimit} tick={tick} invalid={Boolean(errors.limit_price)} testId="modify-price" />
              {errors.limit_price && <span role="alert" className="block text-xs text-danger" data-testid="modify-price-error">{errors.limit_price}</span>}
            </div>
          )}
          {needsStop(order.order_type as never) && (
            <div className="w-44 space-y-1">
              <span className="block text-xs text-muted">Trigger</span>
              <PriceInput id={`m-${order.id}-s`} label="Trigger" value={stop} onChange={setStop} tick={tick} invalid={Boolean(errors.stop_price)} testId="modify-stop" />
              {errors.stop_price && <span role="alert" className="block text-xs text-danger">{errors.stop_price}</span>}
            </div>
          )}
          <Button type="submit" variant="primary" size="sm" disabled={busy || nothing} data-testid="modify-save">
            {busy ? 'Saving…' : 'Modify'}
          </Button>
          <Button size="sm" onClick={onDone} data-testid="modify-cancel">
            Discard
          </Button>
          <div className="basis-full">
            <RefusalNote refusal={refusal} at={at} />
          </div>
        </form>
      </td>
    </tr>
  );
}
