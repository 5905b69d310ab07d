/** Live quotes by instrument. Components read one instrument with useQuote(id), so a tick for one
 * row re-renders that row only. Socket messages are buffered and applied once per animation frame
 * (applyQuotes is the pure reducer, unit-tested). */
import { create } from 'zustand';

export interface QuoteMessage {
  instrument_id: number;
  ltp?: string;
  ltq?: string | number | null;
  bid?: string | null;
  ask?: string | null;
  bid_qty?: string | number | null;
  ask_qty?: string | number | null;
  open?: string | null;
  high?: string | null;
  low?: string | null;
  /** the previous session's close */
  close?: string | null;
  volume?: string | number | null;
  ts?: string;
  stale?: boolean;
}

export interface LiveQuote extends QuoteMessage {
  /** when this client last received a message for it (epoch ms) */
  receivedAt: number;
  /** direction of the last ltp change, for the flash */
  tick: 'up' | 'down' | null;
  /** increments on every ltp change: a key that restarts the flash animation */
  tickSeq: number;
}

export type QuoteMap = Readonly<Record<number, LiveQuote>>;

function compare(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  return x > y ? 1 : x < y ? -1 : 0;
}

/** The quotes after `messages`: only instruments named get a new object. A message carries only
 * its mode's fields, so it is merged over what is known. An ltp-changing message is fresh (stale
 * false) unless it says otherwise. */
export function applyQuotes(prev: QuoteMap, messages: readonly QuoteMessage[], now: number): QuoteMap {
  if (messages.length === 0) return prev;
  const next: Record<number, LiveQuote> = { ...prev };
  for (const msg of messages) {
    const old = next[msg.instrument_id];
    const merged: LiveQuote = {
      ...(old ?? { tick: null, tickSeq: 0 }),
      ...stripUndefined(msg),
      receivedAt: now,
    } as LiveQuote;
    if (msg.stale === undefined) merged.stale = false;
    if (old?.ltp !== undefined && msg.ltp !== undefined && msg.ltp !== old.ltp) {
      const c = compare(msg.ltp, old.ltp);
      merged.tick = c > 0 ? 'up' : c < 0 ? 'down' : old.tick;
      merged.tickSeq = old.tickSeq + 1;
    }
    next[msg.instrument_id] = merged;
  }
  return next;
}

/** Quotes of a REST snapshot (GET /quotes): taken only for instruments with no quote yet, so a
 * snapshot answered after the socket's first frames never puts an older price back. */
export function seedQuotes(prev: QuoteMap, snapshot: readonly QuoteMessage[], now: number): QuoteMap {
  return applyQuotes(
    prev,
    snapshot.filter((q) => prev[q.instrument_id] === undefined),
    now,
  );
}

function stripUndefined(msg: QuoteMessage): Partial<QuoteMessage> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg)) if (v !== undefined && k !== 'type') out[k] = v;
  return out as Partial<QuoteMessage>;
}

interface QuoteStore {
  quotes: QuoteMap;
  apply: (messages: readonly QuoteMessage[], now?: number) => void;
  seed: (snapshot: readonly QuoteMessage[], now?: number) => void;
  reset: () => void;
}

export const useQuoteStore = create<QuoteStore>()((set) => ({
  quotes: {},
  apply: (messages, now = Date.now()) => set((s) => ({ quotes: applyQuotes(s.quotes, messages, now) })),
  seed: (snapshot, now = Date.now()) => set((s) => ({ quotes: seedQuotes(s.quotes, snapshot, now) })),
  reset: () => set({ quotes: {} }),
}));

/** The live quote of one instrument (undefined until the first message). */
export function useQuote(instrumentId: number | null | undefined): LiveQuote | undefined {
  return useQuoteStore((s) => (instrumentId ? s.quotes[instrumentId] : undefined));
}

let buffer: QuoteMessage[] = [];
let scheduled = false;
const schedule: (cb: () => void) => void =
  typeof requestAnimationFrame === 'function' ? (cb) => requestAnimationFrame(cb) : (cb) => setTimeout(cb, 16);

/** Queue a socket quote; all quotes of a frame are applied in one store update. */
export function ingestQuote(msg: QuoteMessage): void {
  buffer.push(msg);
  if (scheduled) return;
  scheduled = true;
  schedule(flushQuotes);
}

export function flushQuotes(): void {
  scheduled = false;
  if (buffer.length === 0) return;
  const batch = buffer;
  buffer = [];
  useQuoteStore.getState().apply(batch);
}
