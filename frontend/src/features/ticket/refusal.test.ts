import { describe, expect, it } from 'vitest';
import { NetworkError, parseRetryAfter, toApiError } from '@/api/errors';
import { describeRefusal } from './refusal';

const body = (code: string, message: string, details: Record<string, unknown> = {}) => ({ error: { code, message, details } });

describe('API errors become refusals shown where they belong', () => {
  it('400: field errors by field', () => {
    const r = describeRefusal(toApiError(400, body('validation_error', 'invalid order', { limit_price: 'must be a multiple of the tick size 0.05' })));
    expect(r).toEqual({ kind: 'fields', message: 'invalid order', fields: { limit_price: 'must be a multiple of the tick size 0.05' } });
  });
  it('422 risk_rejected: the rule and its numbers', () => {
    const r = describeRefusal(toApiError(422, body('risk_rejected', 'order quantity 999999 exceeds the limit 100000', { rule: 'max_order_quantity', limit: 100000, requested: 999999 })));
    expect(r).toMatchObject({ kind: 'risk', rule: 'max_order_quantity' });
    expect(r.kind === 'risk' && r.numbers).toEqual([
      ['Limit', '100000'],
      ['Requested', '999999'],
    ]);
  });
  it('423: the halted state', () => {
    expect(describeRefusal(toApiError(423, body('trading_halted', 'trading is halted', { rule: 'trading_halted' })))).toMatchObject({ kind: 'halted', message: 'trading is halted' });
    expect(describeRefusal(toApiError(503, body('trading_halted', 'halted')))).toMatchObject({ kind: 'halted' });
  });
  it('429: the retry time from Retry-After', () => {
    expect(describeRefusal(toApiError(429, body('rate_limited', 'too many orders'), '3'))).toEqual({ kind: 'rate', message: 'too many orders', retryAfter: 3 });
  });
  it('409: the duplicate names the first order', () => {
    expect(describeRefusal(toApiError(409, body('conflict', 'an identical order is still working', { duplicate_of: 'abc', window_seconds: 5 })))).toMatchObject({ kind: 'duplicate', orderId: 'abc' });
    expect(describeRefusal(toApiError(409, body('conflict', 'client_order_id was already used', { order_id: 'def' })))).toMatchObject({ orderId: 'def' });
  });
  it('anything else keeps its message', () => {
    expect(describeRefusal(new NetworkError('the server could not be reached'))).toEqual({ kind: 'other', message: 'the server could not be reached' });
    expect(describeRefusal(toApiError(500, null))).toEqual({ kind: 'other', message: 'request failed (500)' });
  });
  it('reads Retry-After in seconds or as a date', () => {
    expect(parseRetryAfter('2')).toBe(2);
    expect(parseRetryAfter('Thu, 05 Mar 2026 08:00:10 GMT', Date.parse('2026-03-05T08:00:00Z'))).toBe(10);
    expect(parseRetryAfter(null)).toBeNull();
  });
});
