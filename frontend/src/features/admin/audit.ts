/** The admin audit log in words, pure: an entry's change as "field: before → after" lines, and its
 * target (a user id) by email where known. */
import type { AuditEntry } from './types';

export const AUDIT_PAGE = 50;
export const AUDIT_MAX = 500; // the API's largest limit

function show(value: unknown): string {
  if (value === undefined || value === null) return '—';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Only what changed, in key order: ["role: trader → admin", "active: true → false"]. */
export function summarizeChange(before: AuditEntry['before'], after: AuditEntry['after']): string[] {
  const keys = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])].sort();
  const out: string[] = [];
  for (const k of keys) {
    const a = before?.[k];
    const b = after?.[k];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    out.push(`${k}: ${show(a)} → ${show(b)}`);
  }
  return out;
}

/** "everyone" for the global target, a user's email when known, else the id. */
export function targetLabel(target: string, emails: ReadonlyMap<string, string>): string {
  if (target === 'global') return 'everyone';
  return emails.get(target) ?? target;
}

/** The next limit for "Load more" (the endpoint pages by limit only), or null at the end. */
export function nextAuditLimit(limit: number, received: number): number | null {
  if (received < limit || limit >= AUDIT_MAX) return null;
  return Math.min(limit + AUDIT_PAGE, AUDIT_MAX);
}
