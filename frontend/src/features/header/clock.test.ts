import { describe, expect, it } from 'vitest';
import { marketOpenAt, serverOffset } from './clock';

describe('server clock', () => {
  it('measures the offset at the request midpoint', () => {
    expect(serverOffset('1970-01-01T00:00:10.000Z', 9_000, 9_200)).toBe(900);
    expect(serverOffset('garbage', 0, 0)).toBe(0);
  });
  it('says open inside the session window and closed outside it', () => {
    const market = { open: false, opens_at: '2026-03-05T03:45:00Z', closes_at: '2026-03-05T10:00:00Z' };
    expect(marketOpenAt(Date.parse('2026-03-05T03:44:59Z'), market)).toBe(false);
    expect(marketOpenAt(Date.parse('2026-03-05T03:45:00Z'), market)).toBe(true);
    expect(marketOpenAt(Date.parse('2026-03-05T10:00:00Z'), market)).toBe(false);
    expect(marketOpenAt(0, { open: true, opens_at: null, closes_at: null })).toBe(true);
  });
});
