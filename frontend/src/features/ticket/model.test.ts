import { describe, expect, it } from 'vitest';
import { describeOrder, newClientOrderId, orderBody, quantityOf, stepPrice, validateTicket, type TicketForm } from './model';

const inst = { id: 5, symbol: 'NIFTY-FUT', lot_size: 50, tick_size: '0.05', freeze_quantity: null, active: true };
const form = (patch: Partial<TicketForm> = {}): TicketForm => ({
  side: 'BUY',
  lots: '2',
  orderType: 'MARKET',
  limitPrice: '',
  stopPrice: '',
  product: 'NRML',
  validity: 'DAY',
  ...patch,
});

describe('validateTicket', () => {
  it('accepts a market order in whole lots', () => {
    expect(validateTicket(form(), inst)).toEqual({});
  });
  it('wants a whole number of lots, at least one', () => {
    for (const lots of ['', '0', '1.5', 'x', '-1']) expect(validateTicket(form({ lots }), inst).quantity).toBeTruthy();
  });
  it('wants a limit price for LIMIT and STOP_LIMIT, a trigger for STOP and STOP_LIMIT', () => {
    expect(validateTicket(form({ orderType: 'LIMIT' }), inst)).toEqual({ limit_price: expect.stringContaining('required') });
    expect(validateTicket(form({ orderType: 'STOP' }), inst)).toEqual({ stop_price: expect.stringContaining('required') });
    expect(Object.keys(validateTicket(form({ orderType: 'STOP_LIMIT' }), inst)).sort()).toEqual(['limit_price', 'stop_price']);
  });
  it('refuses prices off the tick grid or not positive', () => {
    expect(validateTicket(form({ orderType: 'LIMIT', limitPrice: '100.03' }), inst).limit_price).toContain('tick size 0.05');
    expect(validateTicket(form({ orderType: 'LIMIT', limitPrice: '0' }), inst).limit_price).toContain('positive');
    expect(validateTicket(form({ orderType: 'LIMIT', limitPrice: '1e3' }), inst).limit_price).toContain('positive');
    expect(validateTicket(form({ orderType: 'LIMIT', limitPrice: '100.05' }), inst)).toEqual({});
  });
  it('refuses an instrument no longer traded', () => {
    expect(validateTicket(form(), { ...inst, active: false }).quantity).toContain('no longer traded');
  });
});

describe('orderBody', () => {
  it('sends quantity as lots x lot size and only the prices the type takes', () => {
    expect(orderBody(form({ orderType: 'LIMIT', limitPrice: '101.25', stopPrice: '99' }), inst, 'cid')).toEqual({
      instrument_id: 5,
      side: 'BUY',
      quantity: 100,
      order_type: 'LIMIT',
      limit_price: '101.25',
      product: 'NRML',
      time_in_force: 'DAY',
      client_order_id: 'cid',
    });
    expect(orderBody(form({ orderType: 'STOP', stopPrice: '99.00' }), inst)).not.toHaveProperty('limit_price');
    expect(orderBody(form(), inst)).not.toHaveProperty('client_order_id');
  });
  it('computes quantity from lots', () => {
    expect(quantityOf({ lots: '3' }, inst)).toBe(150);
    expect(quantityOf({ lots: 'x' }, inst)).toBeNaN();
  });
});

describe('stepPrice', () => {
  it('steps by the tick on the grid', () => {
    expect(stepPrice('100.00', '0.05', 1)).toBe('100.05');
    expect(stepPrice('100.00', '0.05', -1)).toBe('99.95');
    expect(stepPrice('1.0000', '0.0025', 1)).toBe('1.0025');
  });
  it('snaps an off-grid price to the next tick in the step direction', () => {
    expect(stepPrice('100.03', '0.05', 1)).toBe('100.05');
    expect(stepPrice('100.03', '0.05', -1)).toBe('100.00');
  });
  it('never goes to zero or below', () => {
    expect(stepPrice('0.05', '0.05', -1)).toBe('0.05');
    expect(stepPrice('', '0.05', 1)).toBe('0.05');
  });
});

describe('client order ids', () => {
  it('are unique per ticket', () => {
    expect(newClientOrderId()).not.toBe(newClientOrderId());
    expect(newClientOrderId().length).toBeLessThanOrEqual(64);
  });
  it('the confirmation names the whole order', () => {
    expect(describeOrder(form({ orderType: 'STOP_LIMIT', limitPrice: '101', stopPrice: '100' }), inst)).toBe('BUY 100 NIFTY-FUT STOP-LIMIT @ 101 trigger 100 NRML DAY');
  });
});
