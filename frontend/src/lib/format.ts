/** Every number and time the terminal shows is formatted here: Indian digit grouping ('en-IN'),
 * prices at the instrument's tick precision, times in the session's zone (Asia/Kolkata unless
 * /api/v1/meta says otherwise). API decimals arrive as strings and are formatted from the string
 * (Intl formats decimal strings exactly); missing values show as an em dash, never 0. */
import Big from 'big.js';

export const MISSING = '—';
type Dec = string | number | null | undefined;

let sessionZone = 'Asia/Kolkata';
export function setSessionTimeZone(zone: string): void {
  if (zone && zone !== sessionZone) {
    sessionZone = zone;
    timeFmt = makeTimeFmt();
    dateFmt = makeDateFmt();
    dayKeyFmt = makeDayKeyFmt();
    clockFmt = makeClockFmt();
  }
}
export function getSessionTimeZone(): string {
  return sessionZone;
}

const numberFormats = new Map<string, Intl.NumberFormat>();
function nf(min: number, max: number, signed = false): Intl.NumberFormat {
  const key = `${min}:${max}:${signed}`;
  let fmt = numberFormats.get(key);
  if (!fmt) {
    fmt = new Intl.NumberFormat('en-IN', {
      minimumFractionDigits: min,
      maximumFractionDigits: max,
      signDisplay: signed ? 'exceptZero' : 'auto',
    });
    numberFormats.set(key, fmt);
  }
  return fmt;
}

function present(value: Dec): value is string | number {
  if (value === null || value === undefined || value === '') return false;
  return Number.isFinite(Number(value));
}

// Intl.NumberFormat.format accepts decimal strings (exact) in ES2023 engines; typed as number.
function fmt(f: Intl.NumberFormat, value: string | number): string {
  return f.format(value as unknown as number);
}

/** Decimal places implied by a tick size: "0.05" -> 2, "0.0025" -> 4, "1" -> 0. */
export function tickDecimals(tickSize: Dec): number {
  if (!present(tickSize)) return 2;
  const text = String(tickSize);
  const dot = text.indexOf('.');
  if (dot < 0) return 0;
  const frac = text.slice(dot + 1).replace(/0+$/, '');
  return Math.max(frac.length, 0);
}

/** A price at the instrument's precision (at least 2 places, as brokers show cash prices). */
export function formatPrice(value: Dec, tickSize?: Dec): string {
  if (!present(value)) return MISSING;
  const d = Math.max(2, tickDecimals(tickSize));
  return fmt(nf(d, d), value);
}

/** Money: 12,34,567.89. */
export function formatAmount(value: Dec): string {
  if (!present(value)) return MISSING;
  return fmt(nf(2, 2), value);
}

/** Signed money for P&L and change: +1,234.50 / -12.00 / 0.00. */
export function formatSigned(value: Dec, decimals = 2): string {
  if (!present(value)) return MISSING;
  return fmt(nf(decimals, decimals, true), value);
}

/** Quantities and volumes are integers: 12,34,567. */
export function formatQty(value: Dec): string {
  if (!present(value)) return MISSING;
  return fmt(nf(0, 0), value);
}

const compactFmt = new Intl.NumberFormat('en-IN', { notation: 'compact', maximumFractionDigits: 1 });
/** Large counts in Indian short form: 19.6K, 1.2L, 3.4Cr (volumes in tight rows). */
export function formatCompact(value: Dec): string {
  if (!present(value)) return MISSING;
  return fmt(compactFmt, value);
}

/** Percent with sign: +1.25%. */
export function formatPercent(value: Dec): string {
  if (!present(value)) return MISSING;
  return `${fmt(nf(2, 2, true), value)}%`;
}

/** 'up' | 'down' | 'flat' for colouring a signed value; null when missing. */
export function direction(value: Dec): 'up' | 'down' | 'flat' | null {
  if (!present(value)) return null;
  const n = new Big(value);
  return n.gt(0) ? 'up' : n.lt(0) ? 'down' : 'flat';
}

export function toneClass(value: Dec): string {
  const d = direction(value);
  return d === 'up' ? 'text-up' : d === 'down' ? 'text-down' : '';
}

/** Change and % change of ltp against the previous close, exact decimals as strings. */
export function change(ltp: Dec, close: Dec): { change: string; percent: string } | null {
  if (!present(ltp) || !present(close)) return null;
  const c = new Big(close);
  const diff = new Big(ltp).minus(c);
  return { change: diff.toString(), percent: c.eq(0) ? '0' : diff.div(c).times(100).round(2).toString() };
}

/** Decimal arithmetic for callers that must not use floats (P&L, notional). */
export function dec(value: string | number): Big {
  return new Big(value);
}

function makeTimeFmt() {
  return new Intl.DateTimeFormat('en-IN', {
    timeZone: sessionZone,
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
}
function makeDateFmt() {
  return new Intl.DateTimeFormat('en-IN', {
    timeZone: sessionZone,
    day: '2-digit',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
}
function makeDayKeyFmt() {
  return new Intl.DateTimeFormat('en-CA', { timeZone: sessionZone, year: 'numeric', month: '2-digit', day: '2-digit' });
}
function makeClockFmt() {
  return new Intl.DateTimeFormat('en-IN', {
    timeZone: sessionZone,
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  });
}
let timeFmt = makeTimeFmt();
let dateFmt = makeDateFmt();
let dayKeyFmt = makeDayKeyFmt();
let clockFmt = makeClockFmt();

function toDate(value: string | number | Date): Date {
  return value instanceof Date ? value : new Date(value);
}

/** The session day (YYYY-MM-DD in the session zone) of a moment. */
export function sessionDay(value: string | number | Date): string {
  return dayKeyFmt.format(toDate(value));
}

/** HH:mm:ss for a moment of today (session zone), "05 Mar 2026, 14:03" for older ones. */
export function formatTime(value: string | number | Date | null | undefined, now: Date = new Date()): string {
  if (value === null || value === undefined || value === '') return MISSING;
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return MISSING;
  return sessionDay(d) === sessionDay(now) ? timeFmt.format(d) : dateFmt.format(d);
}

/** Full date and time in the session zone (audit trails, tooltips). */
export function formatDateTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined || value === '') return MISSING;
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return MISSING;
  return `${dateFmt.format(d)}:${String(d.getUTCSeconds()).padStart(2, '0')}`;
}

/** The header clock: "14:03:07 IST". */
export function formatClock(value: Date): string {
  return clockFmt.format(value);
}

/** An age for stale quotes: "8s", "3m", "2h". */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return MISSING;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** Seconds since the epoch in the session zone's wall clock, for the chart's time axis
 * (lightweight-charts draws UTC; shifting by the zone's offset shows IST). */
export function chartTime(iso: string): number {
  const d = new Date(iso);
  return Math.floor((d.getTime() + zoneOffsetMs(d)) / 1000);
}

const offsetFmts = new Map<string, Intl.DateTimeFormat>();
/** The session zone's UTC offset at a moment, in ms (IST: +5:30). */
export function zoneOffsetMs(d: Date, zone: string = sessionZone): number {
  let f = offsetFmts.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFmts.set(zone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(d).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(d.getTime() / 1000) * 1000;
}
