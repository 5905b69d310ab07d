import { describe, expect, it } from 'vitest';
import { buildChanges, globalDraft, limitErrorsFromServer, limitsBody, parseLimit, toText, userDraft, type Draft } from './limitsForm';

const GLOBAL = {
  max_order_quantity: 100000,
  max_order_notional: '50000000',
  max_position_quantity: 1000000,
  max_open_orders: 1000,
  orders_per_second: 50,
  order_burst: 100,
  max_daily_loss: '1000000',
  max_orders_per_day: 100000,
  allowed_products: ['MIS', 'NRML', 'CNC'],
  allowed_segments: ['NSECM', 'NSEFO'],
  margin_cnc_percent: '100',
  margin_nrml_percent: '25',
  margin_mis_percent: '20',
};

describe('parseLimit', () => {
  it('takes whole numbers from 1 to 10^12, with Indian grouping typed in', () => {
    expect(parseLimit('int', '1,00,000')).toEqual({ value: 100000 });
    expect(parseLimit('int', ' 5 ')).toEqual({ value: 5 });
    expect(parseLimit('int', '0')).toEqual({ error: 'must be from 1 to 10,00,00,00,00,000' });
    expect(parseLimit('int', '1.5')).toEqual({ error: 'must be a whole number' });
    expect(parseLimit('int', '-3')).toEqual({ error: 'must be a whole number' });
  });
  it('takes amounts above 0 with at most 4 places, as decimal strings', () => {
    expect(parseLimit('amount', '5,00,000.50')).toEqual({ value: '500000.50' });
    expect(parseLimit('amount', '0')).toEqual({ error: 'must be greater than 0 and at most 10^15' });
    expect(parseLimit('amount', '1.23456')).toEqual({ error: 'must be an amount with at most 4 decimal places' });
    expect(parseLimit('amount', 'lots')).toEqual({ error: 'must be an amount with at most 4 decimal places' });
  });
  it('takes percents from 0 to 100', () => {
    expect(parseLimit('percent', '0')).toEqual({ value: '0' });
    expect(parseLimit('percent', '12.5')).toEqual({ value: '12.5' });
    expect(parseLimit('percent', '100.01')).toEqual({ error: 'must be from 0 to 100' });
  });
  it('takes known products in canonical order', () => {
    expect(parseLimit('products', 'cnc, mis')).toEqual({ value: ['MIS', 'CNC'] });
    expect(parseLimit('products', '')).toEqual({ error: 'choose at least one product' });
    expect(parseLimit('products', 'MIS, BO')).toEqual({ error: 'unknown products BO; known: MIS, NRML, CNC' });
  });
  it('takes segment names, upper-cased and without repeats', () => {
    expect(parseLimit('segments', 'nsecm, NSEFO nsecm')).toEqual({ value: ['NSECM', 'NSEFO'] });
    expect(parseLimit('segments', 'NSE-CM')).toEqual({ error: 'not exchange segment names: NSE-CM' });
    expect(parseLimit('segments', ' , ')).toEqual({ error: 'give at least one exchange segment, e.g. NSECM' });
  });
});

describe('drafts', () => {
  it('shows the global values as text', () => {
    const d = globalDraft(GLOBAL);
    expect(d.max_order_quantity).toBe('100000');
    expect(d.allowed_products).toBe('MIS, NRML, CNC');
    expect(toText(null)).toBeNull();
  });
  it('leaves a user\'s limits without an override as null', () => {
    const d = userDraft({ order_burst: 10 });
    expect(d.order_burst).toBe('10');
    expect(d.max_daily_loss).toBeNull();
  });
});

describe('buildChanges', () => {
  it('sends only what changed, parsed', () => {
    const initial = globalDraft(GLOBAL);
    const draft: Draft = { ...initial, max_order_quantity: '2,00,000', allowed_products: 'MIS', margin_mis_percent: '20.00' };
    expect(buildChanges(initial, draft)).toEqual({ changes: { max_order_quantity: 200000, allowed_products: ['MIS'] }, errors: {} });
  });
  it('sends null for a value taken away (back to the default, or no override)', () => {
    const initial = userDraft({ order_burst: 10 });
    expect(buildChanges(initial, { ...initial, order_burst: null }).changes).toEqual({ order_burst: null });
    expect(buildChanges(initial, { ...initial, max_daily_loss: '25000' }).changes).toEqual({ max_daily_loss: '25000' });
  });
  it('names every bad field', () => {
    const initial = globalDraft(GLOBAL);
    const r = buildChanges(initial, { ...initial, order_burst: 'ten', max_daily_loss: '-1' });
    expect(r.errors).toEqual({ order_burst: 'must be a whole number', max_daily_loss: 'must be an amount with at most 4 decimal places' });
  });
  it('builds the body for a scope', () => {
    expect(limitsBody('global', { order_burst: 5 })).toEqual({ global: { order_burst: 5 } });
    expect(limitsBody('u-1', { order_burst: null })).toEqual({ users: { 'u-1': { order_burst: null } } });
  });
});

describe('limitErrorsFromServer', () => {
  it('maps the scope\'s keys to limits and keeps the rest general', () => {
    expect(
      limitErrorsFromServer({ 'global.max_daily_loss': 'must be greater than 0', 'users.abc.order_burst': 'x', unknown_fields: 'foo' }, 'global'),
    ).toEqual({ byLimit: { max_daily_loss: 'must be greater than 0' }, general: ['users.abc.order_burst: x', 'unknown_fields: foo'] });
    expect(limitErrorsFromServer({ 'users.abc.order_burst': 'must be an integer' }, 'abc').byLimit).toEqual({ order_burst: 'must be an integer' });
  });
});
