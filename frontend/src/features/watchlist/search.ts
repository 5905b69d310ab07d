/** Parsing the watchlist search box: a known segment word ("nsefo nifty", "NSECM:RELIANCE") filters
 * by segment, the rest matches symbol or name. */
export const SEGMENTS = ['NSECM', 'NSEFO', 'NSECD', 'BSECM', 'BSEFO', 'MCXFO'] as const;

export function parseSearch(text: string): { q: string; segment: string } {
  let segment = '';
  const rest: string[] = [];
  for (const word of text.trim().split(/[\s:]+/)) {
    if (!word) continue;
    const upper = word.toUpperCase();
    if (!segment && (SEGMENTS as readonly string[]).includes(upper)) segment = upper;
    else rest.push(word);
  }
  return { q: rest.join(' '), segment };
}
