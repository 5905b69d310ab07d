import { describe, expect, it } from 'vitest';
import { backoffDelay, closeAction } from './backoff';
import { Subscriptions } from './subscriptions';

describe('backoffDelay', () => {
  it('doubles per attempt between half and all of the ceiling', () => {
    expect(backoffDelay(0, { random: () => 0 })).toBe(250);
    expect(backoffDelay(0, { random: () => 1 })).toBe(500);
    expect(backoffDelay(3, { random: () => 0 })).toBe(2000);
    expect(backoffDelay(3, { random: () => 1 })).toBe(4000);
  });
  it('is capped', () => {
    expect(backoffDelay(30, { random: () => 1 })).toBe(30_000);
    expect(backoffDelay(30, { random: () => 0 })).toBe(15_000);
  });
  it('jitters so terminals dropped together spread out', () => {
    const seen = new Set([0.1, 0.4, 0.7, 0.95].map((r) => backoffDelay(4, { random: () => r })));
    expect(seen.size).toBe(4);
  });
});

describe('closeAction', () => {
  it('re-authenticates on 4401, stops after our own close, else reconnects', () => {
    expect(closeAction(4401, false)).toBe('reauth');
    expect(closeAction(1000, true)).toBe('stop');
    expect(closeAction(1006, false)).toBe('reconnect');
    expect(closeAction(1013, false)).toBe('reconnect');
    expect(closeAction(1000, false)).toBe('reconnect');
  });
});

describe('Subscriptions', () => {
  it('counts consumers and subscribes once per instrument', () => {
    const s = new Subscriptions();
    expect(s.add([1, 2], 'full')).toEqual([1, 2]);
    expect(s.add([1], 'full')).toEqual([]);
    expect(s.remove([1], 'full')).toEqual({ unsubscribe: [], changed: [] });
    expect(s.remove([1], 'full')).toEqual({ unsubscribe: [1], changed: [] });
    expect(s.size).toBe(1);
  });
  it('uses the richest mode asked for and downgrades when it goes', () => {
    const s = new Subscriptions();
    s.add([1], 'ltp');
    expect(s.add([1], 'full')).toEqual([1]);
    expect(s.modeOf(1)).toBe('full');
    expect(s.remove([1], 'full')).toEqual({ unsubscribe: [], changed: [1] });
    expect(s.modeOf(1)).toBe('ltp');
  });
  it('groups everything by mode for re-subscribing', () => {
    const s = new Subscriptions();
    s.add([1, 2], 'full');
    s.add([3], 'ltp');
    expect(Object.fromEntries(s.byMode())).toEqual({ full: [1, 2], ltp: [3] });
  });
  it('ignores removing what was never added', () => {
    const s = new Subscriptions();
    expect(s.remove([9], 'ltp')).toEqual({ unsubscribe: [], changed: [] });
  });
});
