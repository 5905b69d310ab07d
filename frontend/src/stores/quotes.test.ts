import { beforeEach, describe, expect, it } from 'vitest';
import { applyQuotes, flushQuotes, ingestQuote, seedQuotes, useQuoteStore, type QuoteMap } from './quotes';

describe('applyQuotes', () => {
  it('adds a quote and leaves other instruments the same object', () => {
    const a = applyQuotes({}, [{ instrument_id: 1, ltp: '100', ts: 't1' }, { instrument_id: 2, ltp: '50', ts: 't1' }], 1000);
    const b = applyQuotes(a, [{ instrument_id: 1, ltp: '101', ts: 't2' }], 2000);
    expect(b[2]).toBe(a[2]); // one quote re-renders one row
    expect(b[1]).not.toBe(a[1]);
    expect(b[1]).toMatchObject({ ltp: '101', receivedAt: 2000 });
  });
  it('marks the tick direction and bumps the flash key only when ltp changes', () => {
    let q: QuoteMap = applyQuotes({}, [{ instrument_id: 1, ltp: '100' }], 0);
    expect(q[1]).toMatchObject({ tick: null, tickSeq: 0 });
    q = applyQuotes(q, [{ instrument_id: 1, ltp: '100.5' }], 1);
    expect(q[1]).toMatchObject({ tick: 'up', tickSeq: 1 });
    q = applyQuotes(q, [{ instrument_id: 1, ltp: '100.5', bid: '100.4' }], 2);
    expect(q[1]).toMatchObject({ tick: 'up', tickSeq: 1, bid: '100.4' });
    q = applyQuotes(q, [{ instrument_id: 1, ltp: '99.95' }], 3);
    expect(q[1]).toMatchObject({ tick: 'down', tickSeq: 2 });
  });
  it('compares prices as numbers, not strings', () => {
    let q = applyQuotes({}, [{ instrument_id: 1, ltp: '9.5' }], 0);
    q = applyQuotes(q, [{ instrument_id: 1, ltp: '10.0' }], 1);
    expect(q[1].tick).toBe('up');
  });
  it('merges a mode\'s fields over what is known', () => {
    let q = applyQuotes({}, [{ instrument_id: 1, ltp: '100', close: '98', volume: 10, bid: '99.9' }], 0);
    q = applyQuotes(q, [{ instrument_id: 1, ltp: '100.1', ts: 'x' }], 1);
    expect(q[1]).toMatchObject({ ltp: '100.1', close: '98', volume: 10, bid: '99.9', ts: 'x' });
  });
  it('keeps a stale flag the server sends and clears it on a fresh tick', () => {
    let q = applyQuotes({}, [{ instrument_id: 1, ltp: '100', stale: true }], 0);
    expect(q[1].stale).toBe(true);
    q = applyQuotes(q, [{ instrument_id: 1, ltp: '100.05' }], 1);
    expect(q[1].stale).toBe(false);
  });
  it('returns the same map for no messages', () => {
    const q = applyQuotes({}, [{ instrument_id: 1, ltp: '1' }], 0);
    expect(applyQuotes(q, [], 1)).toBe(q);
  });
  it('applies the last of several messages in one batch', () => {
    const q = applyQuotes({}, [{ instrument_id: 1, ltp: '1' }, { instrument_id: 1, ltp: '2' }, { instrument_id: 1, ltp: '1.5' }], 0);
    expect(q[1]).toMatchObject({ ltp: '1.5', tick: 'down', tickSeq: 2 });
  });
});

describe('ingestQuote', () => {
  beforeEach(() => useQuoteStore.getState().reset());
  it('batches socket quotes into one store update', () => {
    let updates = 0;
    const off = useQuoteStore.subscribe(() => updates++);
    ingestQuote({ instrument_id: 3, ltp: '10' });
    ingestQuote({ instrument_id: 4, ltp: '20' });
    expect(useQuoteStore.getState().quotes[3]).toBeUndefined();
    flushQuotes();
    off();
    expect(updates).toBe(1);
    expect(useQuoteStore.getState().quotes[3].ltp).toBe('10');
    expect(useQuoteStore.getState().quotes[4].ltp).toBe('20');
  });
});

describe('seedQuotes (a REST snapshot drawn before the first socket frame)', () => {
  it('fills instruments with no quote yet', () => {
    const q = seedQuotes({}, [{ instrument_id: 1, ltp: '100', close: '98', stale: false }], 5);
    expect(q[1]).toMatchObject({ ltp: '100', close: '98', stale: false, receivedAt: 5, tick: null });
  });
  it('never replaces a quote the socket already gave', () => {
    const live = applyQuotes({}, [{ instrument_id: 1, ltp: '101' }], 1);
    const q = seedQuotes(live, [{ instrument_id: 1, ltp: '100' }, { instrument_id: 2, ltp: '50' }], 2);
    expect(q[1]).toBe(live[1]);
    expect(q[2].ltp).toBe('50');
  });
  it('is overwritten by the socket\'s next quote', () => {
    useQuoteStore.getState().reset();
    useQuoteStore.getState().seed([{ instrument_id: 7, ltp: '10', close: '9' }]);
    ingestQuote({ instrument_id: 7, ltp: '10.5' });
    flushQuotes();
    expect(useQuoteStore.getState().quotes[7]).toMatchObject({ ltp: '10.5', close: '9', tick: 'up' });
  });
});
