import { describe, expect, it } from 'vitest';
import { inMore, moreItems, NAV, phoneTabs } from './nav';

describe('phone navigation', () => {
  it('puts five pages and More in the bottom bar', () => {
    expect(phoneTabs('trader').map((n) => n.to)).toEqual(['/', '/chart', '/orders', '/positions', '/funds', '/more']);
    expect(phoneTabs('admin')).toEqual(phoneTabs('trader'));
  });

  it('lists trades and broker accounts on More, and admin for admins only', () => {
    expect(moreItems('trader').map((n) => n.to)).toEqual(['/trades', '/accounts']);
    expect(moreItems(undefined).map((n) => n.to)).toEqual(['/trades', '/accounts']);
    expect(moreItems('admin').map((n) => n.to)).toEqual(['/trades', '/accounts', '/admin']);
  });

  it('reaches every desktop page on a phone, from a tab or from More', () => {
    const phone = new Set([...phoneTabs('admin'), ...moreItems('admin')].map((n) => n.to));
    for (const n of NAV.filter((x) => x.desktop)) expect(phone).toContain(n.to);
  });

  it('marks the More tab current on /more and on the pages it links to', () => {
    expect(inMore('/more')).toBe(true);
    expect(inMore('/trades')).toBe(true);
    expect(inMore('/accounts/')).toBe(true);
    expect(inMore('/admin')).toBe(true);
    expect(inMore('/')).toBe(false);
    expect(inMore('/orders')).toBe(false);
    expect(inMore('/tradesman')).toBe(false);
  });
});
