/** What an order refusal means to the trader, from the typed API error: where to show it and what
 * to say. Shared by the ticket and modify-in-place. */
import { ConflictError, HaltedError, RateLimitedError, RiskRejectedError, ValidationError } from '@/api/errors';

export type Refusal =
  | { kind: 'fields'; fields: Record<string, string>; message: string }
  | { kind: 'risk'; rule: string; message: string; numbers: [string, string][] }
  | { kind: 'halted'; message: string; reason: string | null }
  | { kind: 'rate'; message: string; retryAfter: number | null }
  | { kind: 'duplicate'; message: string; orderId: string | null }
  | { kind: 'other'; message: string };

const NUMBER_LABELS: Record<string, string> = {
  limit: 'Limit',
  requested: 'Requested',
  current: 'Current',
  required: 'Required',
  available: 'Available',
  price: 'Price',
};

export function describeRefusal(err: unknown): Refusal {
  if (err instanceof ValidationError) return { kind: 'fields', fields: err.fields, message: err.message };
  if (err instanceof HaltedError) {
    const reason = typeof err.details.reason === 'string' ? err.details.reason : null;
    return { kind: 'halted', message: err.message, reason };
  }
  if (err instanceof RiskRejectedError) {
    const numbers = Object.entries(err.details)
      .filter(([k, v]) => k !== 'rule' && (typeof v === 'string' || typeof v === 'number'))
      .map(([k, v]) => [NUMBER_LABELS[k] ?? k.replace(/_/g, ' '), String(v)] as [string, string]);
    return { kind: 'risk', rule: err.rule, message: err.message, numbers };
  }
  if (err instanceof RateLimitedError) return { kind: 'rate', message: err.message, retryAfter: err.retryAfter };
  if (err instanceof ConflictError) return { kind: 'duplicate', message: err.message, orderId: err.firstOrderId };
  return { kind: 'other', message: err instanceof Error ? err.message : String(err) };
}

/** Field errors the form shows beside its fields, by request field name. The API names
 * quantity, limit_price, stop_price, product, time_in_force, order_type, instrument_id. */
export function fieldErrors(r: Refusal | null): Record<string, string> {
  return r?.kind === 'fields' ? r.fields : {};
}
