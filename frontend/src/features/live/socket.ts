/** The WebSocket client: opens the socket with no query string and authenticates with a first
 * message `{"action": "auth", "token": ...}` (a token in the URL would be written to proxies' logs),
 * keeps the wanted subscriptions, pings, and reconnects with exponential backoff and jitter.
 * The server answers a good auth message with nothing (a bad one with close 4401) and reads the
 * socket's messages in order, so the subscriptions follow the auth message at once. After a reconnect it re-subscribes and has the
 * order/position/trade queries re-read (catchUp) so nothing missed while away stays missing. A 4401
 * refreshes the token and reconnects once; refused again, the session ends with the reason. When the
 * access token is refreshed the socket is swapped for one with the new token (the server closes a
 * socket whose token expires). */
import { backoffDelay, closeAction } from './backoff';
import { Subscriptions, type Mode } from './subscriptions';
import type { SocketStatus } from '@/stores/socket';

export interface SocketDeps {
  /** the socket's URL; a string when known at once (then the socket is created in the same task) */
  url: () => string | Promise<string>;
  token: () => string | null;
  refresh: () => Promise<string>;
  endSession: (reason: string) => void;
  onMessage: (msg: ServerMessage) => void;
  onStatus: (patch: { status: SocketStatus; attempt: number; nextRetryAt: number | null; lastClose?: { code: number; reason: string } | null; opened?: boolean }) => void;
  /** called on every open after the first (reconnect or token swap) */
  onReconnected: () => void;
  createSocket?: (url: string) => WebSocket;
  random?: () => number;
  pingEvery?: number;
  deadAfter?: number;
}

export type ServerMessage = { type: string; [k: string]: unknown };

export class LiveSocket {
  readonly subs = new Subscriptions();
  private ws: WebSocket | null = null;
  private running = false;
  private attempt = 0;
  private opens = 0;
  private authFailures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastMessageAt = 0;
  /** the token the open socket authenticated with */
  private wsToken: string | null = null;
  /** while connect() waits for the URL */
  private resolving = false;
  /** the socket connect() made last (it may still be opening) */
  private latest: WebSocket | null = null;
  private primed: { ids: number[]; mode: Mode; timer: ReturnType<typeof setTimeout> } | null = null;
  private readonly deps: Required<Pick<SocketDeps, 'pingEvery' | 'deadAfter'>> & SocketDeps;

  constructor(deps: SocketDeps) {
    this.deps = { pingEvery: 20_000, deadAfter: 60_000, ...deps };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.authFailures = 0;
    void this.connect();
  }

  /** Close for good (logout): no reconnect. */
  stop(): void {
    this.running = false;
    this.releasePrimed();
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(1000, 'logout');
    this.deps.onStatus({ status: 'closed', attempt: 0, nextRetryAt: null });
  }

  /** The access token changed: reconnect with it, keeping the old socket until the new one is
   * open. Nothing to do while a socket is opening (it authenticates with the token current when it
   * opens) or when the open socket already has this token. */
  swap(): void {
    if (!this.running || this.opening) return;
    if (this.ws?.readyState === WebSocket.OPEN && this.wsToken === this.deps.token()) return;
    void this.connect();
  }

  private get opening(): boolean {
    return this.resolving || this.latest?.readyState === WebSocket.CONNECTING;
  }

  /** Want `ids` before any screen does (right after login, from the watchlist's answer), so their
   * quotes are on the way while the screen renders. The hold ends when a screen wants them all
   * (releasePrimed from useLiveQuotes), after `holdFor` ms, or on stop(). */
  prime(ids: readonly number[], mode: Mode, holdFor = 15_000): void {
    this.releasePrimed();
    const unique = [...new Set(ids)];
    if (unique.length === 0) return;
    this.subscribe(unique, mode);
    const timer = setTimeout(() => this.releasePrimed(), holdFor);
    this.primed = { ids: unique, mode, timer };
  }

  /** End the prime hold: with `covering`, only when that subscription (same mode) holds every
   * primed instrument, so nothing is unsubscribed and subscribed again. */
  releasePrimed(covering?: readonly number[], mode?: Mode): void {
    const p = this.primed;
    if (!p) return;
    if (covering && (mode !== p.mode || !p.ids.every((id) => covering.includes(id)))) return;
    clearTimeout(p.timer);
    this.primed = null;
    this.unsubscribe(p.ids, p.mode);
  }

  /** Reconnect now (browser back online). */
  kick(): void {
    if (!this.running || this.ws?.readyState === WebSocket.OPEN) return;
    this.attempt = 0;
    void this.connect();
  }

  subscribe(ids: readonly number[], mode: Mode): void {
    const changed = this.subs.add(ids, mode);
    this.sendSubscriptions(changed);
  }

  unsubscribe(ids: readonly number[], mode: Mode): void {
    const { unsubscribe, changed } = this.subs.remove(ids, mode);
    if (unsubscribe.length) this.send({ action: 'unsubscribe', instrument_ids: unsubscribe });
    this.sendSubscriptions(changed);
  }

  get isRunning(): boolean {
    return this.running;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  private sendSubscriptions(ids?: readonly number[], target: WebSocket | null = this.ws): void {
    if (ids && ids.length === 0) return;
    for (const [mode, group] of this.subs.byMode(ids)) {
      // the server takes at most 200 per socket; send in slices to keep frames small
      for (let i = 0; i < group.length; i += 100) {
        this.send({ action: 'subscribe', instrument_ids: group.slice(i, i + 100), mode }, target);
      }
    }
  }

  private send(msg: object, target: WebSocket | null = this.ws): void {
    if (target?.readyState === WebSocket.OPEN) target.send(JSON.stringify(msg));
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
  }

  private async connect(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const token = this.deps.token();
    if (!token) {
      this.running = false;
      return;
    }
    const replacing = this.ws && this.ws.readyState === WebSocket.OPEN ? this.ws : null;
    if (!replacing) {
      this.deps.onStatus({ status: this.attempt > 0 || this.opens > 0 ? 'reconnecting' : 'connecting', attempt: this.attempt, nextRetryAt: null });
    }
    let url: string;
    this.resolving = true;
    try {
      const known = this.deps.url();
      url = typeof known === 'string' ? known : await known;
    } catch {
      this.scheduleReconnect({ code: 0, reason: 'server meta unavailable' });
      return;
    } finally {
      this.resolving = false;
    }
    if (!this.running) return;
    const ws = (this.deps.createSocket ?? ((u) => new WebSocket(u)))(url);
    this.latest = ws;
    if (!replacing) this.ws = ws;

    ws.onopen = () => {
      // the token of this moment: a refresh while the socket was opening is already in the store
      const current = this.deps.token();
      if (!this.running || !current) {
        ws.close(1000, 'stopped');
        return;
      }
      // first, before anything else on this socket: the server reads it as the authentication
      ws.send(JSON.stringify({ action: 'auth', token: current }));
      if (replacing) {
        this.ws = ws;
        replacing.onclose = null;
        replacing.onmessage = null;
        replacing.close(1000, 'token refreshed');
      }
      this.wsToken = current;
      this.attempt = 0;
      this.opens += 1;
      this.lastMessageAt = Date.now();
      this.sendSubscriptions();
      this.startPing();
      this.deps.onStatus({ status: 'open', attempt: 0, nextRetryAt: null, lastClose: null, opened: true });
      if (this.opens > 1) this.deps.onReconnected();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastMessageAt = Date.now();
      this.authFailures = 0;
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (msg && typeof msg.type === 'string') this.deps.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return; // a replaced or abandoned socket
      this.ws = null;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      void this.handleClose(ev.code, ev.reason);
    };
    ws.onerror = () => {
      /* onclose follows with the code */
    };
  }

  private async handleClose(code: number, reason: string): Promise<void> {
    const action = closeAction(code, !this.running);
    if (action === 'stop') return;
    if (action === 'reauth') {
      this.authFailures += 1;
      if (this.authFailures > 1) {
        this.running = false;
        this.deps.onStatus({ status: 'closed', attempt: 0, nextRetryAt: null, lastClose: { code, reason } });
        this.deps.endSession(`The live feed ended the session (${reason || 'unauthorized'}). Please log in again.`);
        return;
      }
      try {
        await this.deps.refresh();
      } catch (err) {
        if ((err as { status?: number })?.status === 401) return; // refresh ended the session
        this.scheduleReconnect({ code, reason });
        return;
      }
      if (this.running) void this.connect();
      return;
    }
    this.scheduleReconnect({ code, reason });
  }

  private scheduleReconnect(lastClose: { code: number; reason: string }): void {
    if (!this.running) return;
    const delay = backoffDelay(this.attempt, { random: this.deps.random });
    this.attempt += 1;
    const nextRetryAt = Date.now() + delay;
    this.deps.onStatus({ status: 'reconnecting', attempt: this.attempt, nextRetryAt, lastClose });
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private startPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      if (Date.now() - this.lastMessageAt > this.deps.deadAfter) {
        // silent too long: treat as dropped
        ws.onclose = null;
        ws.close(4000, 'no answer');
        this.ws = null;
        if (this.pingTimer) clearInterval(this.pingTimer);
        this.pingTimer = null;
        this.scheduleReconnect({ code: 4000, reason: 'no answer to ping' });
        return;
      }
      this.send({ action: 'ping' });
    }, this.deps.pingEvery);
  }
}
