import { describe, expect, it } from 'vitest';
import { refreshDelay } from './refresh';

describe('refreshDelay', () => {
  const now = 1_000_000;
  it('refreshes a minute before expiry for long tokens', () => {
    expect(refreshDelay(now + 3600_000, now, now)).toBe(3600_000 - 60_000);
  });
  it('refreshes a fifth of the lifetime early for short tokens', () => {
    expect(refreshDelay(now + 100_000, now, now)).toBe(80_000);
  });
  it('keeps at least 5 s of margin', () => {
    expect(refreshDelay(now + 10_000, now, now)).toBe(5_000);
  });
  it('refreshes at once when inside the margin or already expired', () => {
    expect(refreshDelay(now + 30_000, now - 3600_000, now)).toBe(0);
    expect(refreshDelay(now - 1, now - 900_000, now)).toBe(0);
  });
  it('counts from the issue time after a reload', () => {
    // issued 10 min ago, 15 min lifetime, 5 min left: refresh a minute before expiry -> in 4 min
    expect(refreshDelay(now + 300_000, now - 600_000, now)).toBe(240_000);
  });
});
