/** Side colours for text: `text-buy-fg` / `text-sell-fg` (src/index.css). The buy/sell tokens are
 * fills for buttons and the ticket's header; as text on the dark surface they fall under WCAG's
 * 4.5:1, so a side, or a signed quantity, shown as text takes these. */
export const BUY_TEXT = 'text-buy-fg';
export const SELL_TEXT = 'text-sell-fg';

export function sideTone(side: 'BUY' | 'SELL'): string {
  return side === 'BUY' ? BUY_TEXT : SELL_TEXT;
}

/** A signed quantity: long in the buy colour, short in the sell colour, flat muted. */
export function qtyTone(quantity: number): string {
  return quantity > 0 ? BUY_TEXT : quantity < 0 ? SELL_TEXT : 'text-muted';
}
