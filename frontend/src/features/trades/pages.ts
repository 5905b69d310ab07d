/** Cursor pagination of the trade book, pure: the next page's cursor and the pages flattened
 * without duplicates (a live refetch of page 1 can repeat a trade already on page 2). */
import type { Page, Trade } from '@/api/types';

export const TRADE_PAGE = 50;

export function nextCursor(last: Page<Trade> | undefined): string | undefined {
  return last?.next_cursor ?? undefined;
}

export function flattenTrades(pages: readonly Page<Trade>[] | undefined): Trade[] {
  const seen = new Set<string>();
  const out: Trade[] = [];
  for (const page of pages ?? []) {
    for (const t of page.items) {
      if (seen.has(t.id)) continue;
      seen.add(t.id);
      out.push(t);
    }
  }
  return out;
}

/** The short form of an order id shown in the book (its first 8 characters). */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
