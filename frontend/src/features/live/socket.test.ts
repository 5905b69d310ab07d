import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LiveSocket, type SocketDeps } from './socket';

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: (() => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string) {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  drop(code: number, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  message(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

const flush = () => new Promise((r) => setTimeout(r, 0));

function setup(overrides: Partial<SocketDeps> = {}) {
  let token: string | null = 'tok-1';
  const deps = {
    url: vi.fn(async () => 'ws://h:1/ws'),
    token: () => token,
    refresh: vi.fn(async () => {
      token = 'tok-2';
      return token;
    }),
    endSession: vi.fn(),
    onMessage: vi.fn(),
    onStatus: vi.fn(),
    onReconnected: vi.fn(),
    createSocket: (u: string) => new FakeSocket(u) as unknown as WebSocket,
    random: () => 0,
    ...overrides,
  };
  const live = new LiveSocket(deps);
  return { live, deps, setToken: (t: string | null) => (token = t) };
}

describe('LiveSocket', () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal('WebSocket', { OPEN: 1, CONNECTING: 0, CLOSING: 2, CLOSED: 3 });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('opens the socket without a query string, authenticates in its first message, then subscribes', async () => {
    const { live } = setup();
    live.subscribe([1, 2], 'full');
    live.start();
    await flush();
    const ws = FakeSocket.all[0];
    expect(ws.url).toBe('ws://h:1/ws');
    expect(ws.sent).toEqual([]); // nothing before the socket is open
    ws.open();
    expect(ws.sent).toEqual([
      { action: 'auth', token: 'tok-1' },
      { action: 'subscribe', instrument_ids: [1, 2], mode: 'full' },
    ]);
    live.subscribe([3], 'ltp');
    live.unsubscribe([1], 'full');
    expect(ws.sent.slice(2)).toEqual([
      { action: 'subscribe', instrument_ids: [3], mode: 'ltp' },
      { action: 'unsubscribe', instrument_ids: [1] },
    ]);
  });

  it('never puts the token in the URL, whatever the configured URL holds', async () => {
    const { live } = setup({ url: vi.fn(async () => 'wss://example.test/ws?region=in') });
    live.start();
    await flush();
    expect(FakeSocket.all[0].url).toBe('wss://example.test/ws?region=in');
    expect(FakeSocket.all[0].url).not.toContain('tok-1');
  });

  it('authenticates with the token current when the socket opens (refreshed while opening)', async () => {
    const { live, setToken } = setup();
    live.subscribe([5], 'ltp');
    live.start();
    await flush();
    setToken('tok-fresh');
    FakeSocket.all[0].open();
    expect(FakeSocket.all[0].sent[0]).toEqual({ action: 'auth', token: 'tok-fresh' });
  });

  it('closes a socket that opens after the session ended, sending nothing', async () => {
    const { live, setToken } = setup();
    live.start();
    await flush();
    setToken(null);
    FakeSocket.all[0].open();
    expect(FakeSocket.all[0].sent).toEqual([]);
    expect(FakeSocket.all[0].closed?.code).toBe(1000);
  });

  it('hands server messages on', async () => {
    const { live, deps } = setup();
    live.start();
    await flush();
    FakeSocket.all[0].open();
    FakeSocket.all[0].message({ type: 'quote', instrument_id: 1, ltp: '1' });
    expect(deps.onMessage).toHaveBeenCalledWith({ type: 'quote', instrument_id: 1, ltp: '1' });
  });

  it('reconnects with growing delays, re-subscribes and catches up after a drop', async () => {
    vi.useFakeTimers();
    const { live, deps } = setup();
    live.subscribe([7], 'full');
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all[0].open();
    expect(deps.onReconnected).not.toHaveBeenCalled();

    FakeSocket.all[0].drop(1006);
    expect(deps.onStatus).toHaveBeenLastCalledWith(expect.objectContaining({ status: 'reconnecting', attempt: 1 }));
    await vi.advanceTimersByTimeAsync(249);
    expect(FakeSocket.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.all).toHaveLength(2);

    FakeSocket.all[1].drop(1006); // failed again: the next wait doubles
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeSocket.all).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeSocket.all).toHaveLength(3);

    FakeSocket.all[2].open();
    expect(FakeSocket.all[2].url).toBe('ws://h:1/ws');
    expect(FakeSocket.all[2].sent).toEqual([
      { action: 'auth', token: 'tok-1' },
      { action: 'subscribe', instrument_ids: [7], mode: 'full' },
    ]);
    expect(deps.onReconnected).toHaveBeenCalledTimes(1);
    expect(deps.onStatus).toHaveBeenLastCalledWith(expect.objectContaining({ status: 'open', attempt: 0 }));

    FakeSocket.all[2].drop(1006); // after an open the backoff starts over
    await vi.advanceTimersByTimeAsync(250);
    expect(FakeSocket.all).toHaveLength(4);
  });

  it('on 4401 refreshes the token and reconnects at once with the new one', async () => {
    const { live, deps } = setup();
    live.start();
    await flush();
    FakeSocket.all[0].open();
    FakeSocket.all[0].drop(4401, 'session ended');
    await flush();
    await flush();
    expect(deps.refresh).toHaveBeenCalledTimes(1);
    expect(FakeSocket.all[1].url).toBe('ws://h:1/ws');
    FakeSocket.all[1].open();
    expect(FakeSocket.all[1].sent[0]).toEqual({ action: 'auth', token: 'tok-2' });
    expect(deps.endSession).not.toHaveBeenCalled();
  });

  it('ends the session when the socket refuses the refreshed token too', async () => {
    const { live, deps } = setup();
    live.start();
    await flush();
    FakeSocket.all[0].drop(4401, 'unauthorized');
    await flush();
    await flush();
    FakeSocket.all[1].drop(4401, 'unauthorized');
    await flush();
    expect(deps.endSession).toHaveBeenCalledWith(expect.stringContaining('unauthorized'));
    expect(FakeSocket.all).toHaveLength(2);
  });

  it('stops for good on stop(): no reconnect after the close', async () => {
    vi.useFakeTimers();
    const { live } = setup();
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeSocket.all[0];
    ws.open();
    live.stop();
    expect(ws.closed).toEqual({ code: 1000, reason: 'logout' });
    ws.drop(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('swaps to a socket with the refreshed token, closing the old one once the new is open', async () => {
    const { live, setToken, deps } = setup();
    live.subscribe([1], 'full');
    live.start();
    await flush();
    const old = FakeSocket.all[0];
    old.open();
    setToken('tok-9');
    live.swap();
    await flush();
    const next = FakeSocket.all[1];
    expect(next.url).toBe('ws://h:1/ws');
    expect(old.closed).toBeNull();
    next.open();
    expect(old.closed?.code).toBe(1000);
    expect(next.sent).toEqual([
      { action: 'auth', token: 'tok-9' },
      { action: 'subscribe', instrument_ids: [1], mode: 'full' },
    ]);
    // the old socket got no second auth: it stays on its own token until closed
    expect(old.sent.filter((m) => (m as { action: string }).action === 'auth')).toEqual([{ action: 'auth', token: 'tok-1' }]);
    expect(deps.onReconnected).toHaveBeenCalledTimes(1);
  });

  it('pings, and treats a silent socket as dropped', async () => {
    vi.useFakeTimers();
    const { live } = setup();
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeSocket.all[0];
    ws.open();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ws.sent).toContainEqual({ action: 'ping' });
    ws.message({ type: 'pong' });
    await vi.advanceTimersByTimeAsync(80_000); // silence past deadAfter (checked on each ping)
    expect(ws.closed?.code).toBe(4000);
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeSocket.all.length).toBeGreaterThan(1);
  });

  it('does not swap a socket that is still opening: it authenticates with the token of its open', async () => {
    const { live, setToken } = setup();
    live.start();
    live.swap(); // the shell mounting right after signIn started the socket
    await flush();
    setToken('tok-3');
    live.swap(); // a refresh while the socket opens
    await flush();
    expect(FakeSocket.all).toHaveLength(1);
    FakeSocket.all[0].open();
    expect(FakeSocket.all[0].sent[0]).toEqual({ action: 'auth', token: 'tok-3' });
  });

  it('does not swap an open socket whose token is still the current one', async () => {
    const { live } = setup();
    live.start();
    await flush();
    FakeSocket.all[0].open();
    live.swap();
    await flush();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('primes a subscription before any screen wants it, sent as the socket opens', async () => {
    const { live } = setup();
    live.start();
    live.prime([4, 5, 5], 'full');
    await flush();
    FakeSocket.all[0].open();
    expect(FakeSocket.all[0].sent).toEqual([
      { action: 'auth', token: 'tok-1' },
      { action: 'subscribe', instrument_ids: [4, 5], mode: 'full' },
    ]);
  });

  it('hands a primed subscription over to the screen that wants it, with nothing re-sent', async () => {
    const { live } = setup();
    live.start();
    await flush();
    const ws = FakeSocket.all[0];
    ws.open();
    live.prime([4, 5], 'full');
    live.subscribe([4, 5, 6], 'full'); // the watchlist mounts
    live.releasePrimed([4, 5, 6], 'full');
    expect(ws.sent.slice(1)).toEqual([
      { action: 'subscribe', instrument_ids: [4, 5], mode: 'full' },
      { action: 'subscribe', instrument_ids: [6], mode: 'full' },
    ]);
    live.unsubscribe([4, 5, 6], 'full'); // the watchlist unmounts: nothing held back
    expect(ws.sent.at(-1)).toEqual({ action: 'unsubscribe', instrument_ids: [4, 5, 6] });
    expect(live.subs.size).toBe(0);
  });

  it('keeps a prime that a screen covers only in part, and drops it after its hold', async () => {
    vi.useFakeTimers();
    const { live } = setup();
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    const ws = FakeSocket.all[0];
    ws.open();
    live.prime([4, 5], 'full', 10_000);
    live.subscribe([4], 'full'); // the chart wants one of them
    live.releasePrimed([4], 'full');
    expect(live.subs.modeOf(5)).toBe('full');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ws.sent.at(-1)).toEqual({ action: 'unsubscribe', instrument_ids: [5] });
    expect(live.subs.modeOf(4)).toBe('full');
  });

  it('drops a prime on stop (logout): the next session starts with nothing wanted', async () => {
    const { live } = setup();
    live.start();
    live.prime([4], 'full');
    live.stop();
    expect(live.subs.size).toBe(0);
  });

  it('creates the socket within start() when the URL is known (no wait before the first render)', () => {
    const { live } = setup({ url: vi.fn(() => 'ws://h:1/ws') });
    live.start();
    expect(FakeSocket.all).toHaveLength(1);
    expect(FakeSocket.all[0].url).toBe('ws://h:1/ws');
  });
});
