/** Side colours for text. The theme's buy/sell tokens are button backgrounds: as text on the dark
 * surface they fall under WCAG's 4.5:1 (axe: #2563eb and #c2410c on #131722 are 3.5:1), so dark
 * mode uses the accent and down text tokens instead until the theme has buy/sell text tokens. */
export const BUY_TEXT = 'text-buy dark:text-accent';
export const SELL_TEXT = 'text-sell dark:text-down';

export function sideTone(side: 'BUY' | 'SELL'): string {
  return side === 'BUY' ? BUY_TEXT : SELL_TEXT;
}

/** A signed quantity: long in the buy colour, short in the sell colour, flat muted. */
export function qtyTone(quantity: number): string {
  return quantity > 0 ? BUY_TEXT : quantity < 0 ? SELL_TEXT : 'text-muted';
}
