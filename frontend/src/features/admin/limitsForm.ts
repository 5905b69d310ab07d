/** The risk-limit editor, pure: a draft of text per limit, parsing and checking each with the
 * server's rules (tradingapp/domain/risk_limits.py), the PUT body of only what changed, and the
 * server's 400 keys ("global.max_daily_loss", "users.<id>.order_burst") mapped back to fields.
 *
 * A draft value of null means "no value here": for the global scope, back to the built-in default;
 * for a user, no override (the global value applies). */
import { dec } from '@/lib/format';
import { LIMITS, PRODUCTS, type LimitKind, type LimitName } from '@/features/funds/limits';
import type { RiskLimitOverrides } from '@/api/types';

export type Draft = Record<LimitName, string | null>;
export type LimitValue = number | string | string[];
export type Changes = Partial<Record<LimitName, LimitValue | null>>;

const MAX_INT = 10 ** 12;
const MAX_AMOUNT = 10 ** 15;
const SEGMENT = /^[A-Z0-9_]{1,16}$/;
const DECIMAL = /^\d+(\.\d{1,4})?$/;

export const KIND: Record<LimitName, LimitKind> = Object.fromEntries(LIMITS.map((l) => [l.name, l.kind])) as Record<LimitName, LimitKind>;

/** A stored value as the editor's text: 100000 -> "100000", ["MIS","CNC"] -> "MIS, CNC". */
export function toText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.join(', ');
  return String(value);
}

/** The draft for the global scope: every effective global value. */
export function globalDraft(global: Partial<Record<LimitName, unknown>>): Draft {
  return Object.fromEntries(LIMITS.map((l) => [l.name, toText(global[l.name])])) as Draft;
}

/** The draft for one user: their overrides, null where they have none. */
export function userDraft(overrides: Partial<RiskLimitOverrides> | undefined): Draft {
  return Object.fromEntries(LIMITS.map((l) => [l.name, toText(overrides?.[l.name])])) as Draft;
}

function list(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
}

/** One limit's text parsed the way the server will take it, or the reason it will not. */
export function parseLimit(kind: LimitKind, text: string): { value: LimitValue } | { error: string } {
  const plain = text.trim().replace(/[,_\s]/g, '');
  switch (kind) {
    case 'int': {
      if (!/^\d+$/.test(plain)) return { error: 'must be a whole number' };
      const n = Number(plain);
      if (n < 1 || n > MAX_INT) return { error: `must be from 1 to ${MAX_INT.toLocaleString('en-IN')}` };
      return { value: n };
    }
    case 'amount': {
      if (!DECIMAL.test(plain)) return { error: 'must be an amount with at most 4 decimal places' };
      const n = Number(plain);
      if (n <= 0 || n > MAX_AMOUNT) return { error: 'must be greater than 0 and at most 10^15' };
      return { value: plain };
    }
    case 'percent': {
      if (!DECIMAL.test(plain)) return { error: 'must be a percent with at most 4 decimal places' };
      if (Number(plain) > 100) return { error: 'must be from 0 to 100' };
      return { value: plain };
    }
    case 'products': {
      const chosen = list(text);
      if (chosen.length === 0) return { error: 'choose at least one product' };
      const unknown = chosen.filter((p) => !(PRODUCTS as readonly string[]).includes(p));
      if (unknown.length) return { error: `unknown products ${unknown.join(', ')}; known: ${PRODUCTS.join(', ')}` };
      return { value: PRODUCTS.filter((p) => chosen.includes(p)) };
    }
    case 'segments': {
      const chosen = [...new Set(list(text))];
      if (chosen.length === 0) return { error: 'give at least one exchange segment, e.g. NSECM' };
      const bad = chosen.filter((s) => !SEGMENT.test(s));
      if (bad.length) return { error: `not exchange segment names: ${bad.join(', ')}` };
      return { value: chosen };
    }
  }
}

function sameValue(a: LimitValue, b: LimitValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return toText(a) === toText(b);
  return dec(a).eq(dec(b));
}

/** What to send for the limits that changed between `initial` and `draft`, or every field's error. */
export function buildChanges(initial: Draft, draft: Draft): { changes: Changes; errors: Partial<Record<LimitName, string>> } {
  const changes: Changes = {};
  const errors: Partial<Record<LimitName, string>> = {};
  for (const { name } of LIMITS) {
    const before = initial[name];
    const now = draft[name];
    if (now === before) continue;
    if (now === null) {
      changes[name] = null;
      continue;
    }
    const parsed = parseLimit(KIND[name], now);
    if ('error' in parsed) {
      errors[name] = parsed.error;
      continue;
    }
    if (before !== null) {
      const old = parseLimit(KIND[name], before);
      if ('value' in old && sameValue(old.value, parsed.value)) continue; // "1,00,000" is still 100000
    }
    changes[name] = parsed.value;
  }
  return { changes, errors };
}

/** The PUT /admin/risk-limits body for a scope ('global' or a user id). */
export function limitsBody(scope: string, changes: Changes): { global?: Changes; users?: Record<string, Changes | null> } {
  return scope === 'global' ? { global: changes } : { users: { [scope]: changes } };
}

/** A server 400's field keys for this scope mapped back to limit names; the rest stays general. */
export function limitErrorsFromServer(fields: Record<string, string>, scope: string): { byLimit: Partial<Record<LimitName, string>>; general: string[] } {
  const prefix = scope === 'global' ? 'global.' : `users.${scope}.`;
  const byLimit: Partial<Record<LimitName, string>> = {};
  const general: string[] = [];
  for (const [key, message] of Object.entries(fields)) {
    const name = key.startsWith(prefix) ? key.slice(prefix.length) : null;
    if (name && name in KIND) byLimit[name as LimitName] = message;
    else general.push(`${key}: ${message}`);
  }
  return { byLimit, general };
}
