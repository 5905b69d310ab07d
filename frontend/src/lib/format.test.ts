import { afterEach, describe, expect, it } from 'vitest';
import { change, chartTime, direction, formatAge, formatAmount, formatClock, formatCompact, formatPercent, formatPrice, formatQty, formatSigned, formatTime, MISSING, sessionDay, setSessionTimeZone, tickDecimals, zoneOffsetMs } from './format';

describe('numbers', () => {
  it('groups amounts the Indian way, exactly from the decimal string', () => {
    expect(formatAmount('1234567.891')).toBe('12,34,567.89');
    expect(formatAmount('100000000')).toBe('10,00,00,000.00');
    // beyond float precision: formatted from the string, not a double
    expect(formatAmount('12345678901234567.25')).toBe('12,34,56,78,90,12,34,567.25');
  });
  it('shows prices at the tick precision, at least two places', () => {
    expect(formatPrice('2895.3', '0.05')).toBe('2,895.30');
    expect(formatPrice('2895.3', '0.0500')).toBe('2,895.30');
    expect(formatPrice('1.2345', '0.0025')).toBe('1.2345');
    expect(formatPrice('83.1', '1')).toBe('83.10');
  });
  it('derives decimals from the tick size', () => {
    expect(tickDecimals('0.05')).toBe(2);
    expect(tickDecimals('0.0500')).toBe(2);
    expect(tickDecimals('0.0025')).toBe(4);
    expect(tickDecimals('1')).toBe(0);
    expect(tickDecimals(null)).toBe(2);
  });
  it('shows missing values as a dash, never zero', () => {
    for (const f of [formatPrice, formatAmount, formatQty, formatPercent, formatSigned, formatCompact]) {
      expect(f(null)).toBe(MISSING);
      expect(f(undefined)).toBe(MISSING);
      expect(f('')).toBe(MISSING);
    }
    expect(formatPrice('0')).toBe('0.00');
  });
  it('signs P&L and percentages', () => {
    expect(formatSigned('1234.5')).toBe('+1,234.50');
    expect(formatSigned('-12')).toBe('-12.00');
    expect(formatSigned('0')).toBe('0.00');
    expect(formatPercent('1.254')).toBe('+1.25%');
    expect(direction('-0.01')).toBe('down');
    expect(direction('0')).toBe('flat');
    expect(direction(null)).toBeNull();
  });
  it('formats quantities as grouped integers and volumes compactly', () => {
    expect(formatQty(1234567)).toBe('12,34,567');
    expect(formatCompact('1234567')).toBe('12.3L');
  });
  it('computes change and % change from the previous close exactly', () => {
    expect(change('101.25', '100')).toEqual({ change: '1.25', percent: '1.25' });
    expect(change('0.3', '0.1')).toEqual({ change: '0.2', percent: '200' });
    expect(change('99', '100')?.change).toBe('-1');
    expect(change(undefined, '100')).toBeNull();
    expect(change('1', '0')).toEqual({ change: '1', percent: '0' });
  });
});

describe('times in the session zone', () => {
  afterEach(() => setSessionTimeZone('Asia/Kolkata'));
  const now = new Date('2026-03-05T08:00:00Z'); // 13:30 IST

  it('shows HH:mm:ss for today and a date for older moments', () => {
    expect(formatTime('2026-03-05T04:15:07Z', now)).toBe('09:45:07');
    expect(formatTime('2026-03-04T04:15:07Z', now)).toMatch(/04 Mar 2026.*09:45/);
    expect(formatTime(null, now)).toBe(MISSING);
    expect(formatTime('not a time', now)).toBe(MISSING);
  });
  it('puts the day boundary at IST midnight, not UTC midnight', () => {
    // 19:00Z on the 4th is 00:30 IST on the 5th: today
    expect(sessionDay('2026-03-04T19:00:00Z')).toBe('2026-03-05');
    expect(formatTime('2026-03-04T19:00:00Z', now)).toBe('00:30:00');
  });
  it('follows the zone the server names', () => {
    setSessionTimeZone('UTC');
    expect(formatTime('2026-03-05T04:15:07Z', now)).toBe('04:15:07');
  });
  it('shows the clock with its zone', () => {
    expect(formatClock(new Date('2026-03-05T08:00:00Z'))).toMatch(/13:30:00.*IST/);
  });
  it('shifts chart times to IST wall clock', () => {
    expect(zoneOffsetMs(new Date('2026-03-05T08:00:00Z'))).toBe(5.5 * 3600_000);
    expect(chartTime('2026-03-05T03:45:00Z')).toBe(Date.UTC(2026, 2, 5, 9, 15) / 1000);
  });
  it('ages stale quotes', () => {
    expect(formatAge(8_400)).toBe('8s');
    expect(formatAge(185_000)).toBe('3m');
    expect(formatAge(2 * 3600_000)).toBe('2h');
    expect(formatAge(-1)).toBe(MISSING);
  });
});
