import { describe, expect, it } from 'vitest';
import { formatAmount, formatPrice, MISSING } from './format';

describe('format (smoke)', () => {
  it('groups amounts the Indian way', () => {
    expect(formatAmount('1234567.891')).toBe('12,34,567.89');
  });
  it('shows a missing price as a dash', () => {
    expect(formatPrice(null)).toBe(MISSING);
  });
});
