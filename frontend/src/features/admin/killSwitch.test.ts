import { describe, expect, it } from 'vitest';
import { summarizeChange, nextAuditLimit, targetLabel } from './audit';
import { checkReason, stateChangeEffect, stateChangeTitle } from './killSwitch';

describe('kill switch words', () => {
  it('names the change and who it applies to', () => {
    expect(stateChangeTitle('HALTED', 'everyone')).toBe('Halt trading for everyone?');
    expect(stateChangeTitle('REDUCING', 'a@b.in')).toBe('Set a@b.in to reduce-only?');
    expect(stateChangeTitle('ACTIVE', 'everyone')).toBe('Resume trading for everyone?');
  });
  it('says what the state does', () => {
    expect(stateChangeEffect('HALTED', true)).toMatch(/^Every user: new orders and modifications that add exposure are refused; cancels still pass\./);
    expect(stateChangeEffect('REDUCING', false)).toMatch(/^This user: only orders that shrink a position are accepted/);
    expect(stateChangeEffect('ACTIVE', false)).toMatch(/global state still applies/);
  });
  it('requires a reason of at most 200 characters', () => {
    expect(checkReason('  ')).toBe('a reason is required');
    expect(checkReason('x'.repeat(201))).toBe('at most 200 characters');
    expect(checkReason('exchange outage')).toBeNull();
  });
});

describe('audit log', () => {
  it('lists only the fields that changed', () => {
    expect(summarizeChange({ role: 'trader', active: true }, { role: 'admin', active: true })).toEqual(['role: trader → admin']);
    expect(summarizeChange({ order_burst: 10 }, {})).toEqual(['order_burst: 10 → —']);
    expect(summarizeChange(null, { allowed_products: ['MIS'] })).toEqual(['allowed_products: — → MIS']);
  });
  it('names the target', () => {
    const emails = new Map([['u1', 'a@b.in']]);
    expect(targetLabel('global', emails)).toBe('everyone');
    expect(targetLabel('u1', emails)).toBe('a@b.in');
    expect(targetLabel('u2', emails)).toBe('u2');
  });
  it('grows the page until a short answer or the API\'s maximum', () => {
    expect(nextAuditLimit(50, 50)).toBe(100);
    expect(nextAuditLimit(100, 73)).toBeNull();
    expect(nextAuditLimit(480, 480)).toBe(500);
    expect(nextAuditLimit(500, 500)).toBeNull();
  });
});
