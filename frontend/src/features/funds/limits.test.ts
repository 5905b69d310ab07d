import { describe, expect, it } from 'vitest';
import { formatLimit, LIMITS } from './limits';

describe('formatLimit', () => {
  it('groups integers the Indian way', () => {
    expect(formatLimit('int', 100000)).toBe('1,00,000');
    expect(formatLimit('int', 1000000)).toBe('10,00,000');
    expect(formatLimit('int', 50)).toBe('50');
  });
  it('shows amounts in rupees with two places', () => {
    expect(formatLimit('amount', '50000000')).toBe('₹5,00,00,000.00');
    expect(formatLimit('amount', '1234.5')).toBe('₹1,234.50');
  });
  it('shows whole percents without places and keeps a fraction', () => {
    expect(formatLimit('percent', '20')).toBe('20%');
    expect(formatLimit('percent', '100')).toBe('100%');
    expect(formatLimit('percent', '12.5')).toBe('12.50%');
    expect(formatLimit('percent', '0.125')).toBe('0.125%');
  });
  it('lists products and segments', () => {
    expect(formatLimit('products', ['MIS', 'NRML'])).toBe('MIS, NRML');
    expect(formatLimit('segments', ['NSECM'])).toBe('NSECM');
    expect(formatLimit('segments', [])).toBe('—');
  });
  it('shows a missing value as a dash, never 0', () => {
    expect(formatLimit('int', null)).toBe('—');
    expect(formatLimit('amount', undefined)).toBe('—');
    expect(formatLimit('percent', 'abc')).toBe('—');
  });
  it('covers every limit the API has', () => {
    expect(LIMITS.map((l) => l.name).sort()).toEqual(
      [
        'allowed_products',
        'allowed_segments',
        'margin_cnc_percent',
        'margin_mis_percent',
        'margin_nrml_percent',
        'max_daily_loss',
        'max_open_orders',
        'max_order_notional',
        'max_order_quantity',
        'max_orders_per_day',
        'max_position_quantity',
        'order_burst',
        'orders_per_second',
      ].sort(),
    );
  });
});
