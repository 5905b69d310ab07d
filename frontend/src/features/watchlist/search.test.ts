import { describe, expect, it } from 'vitest';
import { parseSearch } from './search';

describe('parseSearch', () => {
  it('takes a segment word as the segment filter', () => {
    expect(parseSearch('nsefo nifty')).toEqual({ q: 'nifty', segment: 'NSEFO' });
    expect(parseSearch('NSECM:RELIANCE')).toEqual({ q: 'RELIANCE', segment: 'NSECM' });
  });
  it('matches symbol or name with the rest', () => {
    expect(parseSearch('  tata motors ')).toEqual({ q: 'tata motors', segment: '' });
    expect(parseSearch('')).toEqual({ q: '', segment: '' });
  });
});
