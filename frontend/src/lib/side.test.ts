import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qtyTone, sideTone } from './side';

const css = readFileSync(resolve(__dirname, '../index.css'), 'utf8');

/** The custom properties of one rule of index.css (`:root` or `.dark`). */
function tokens(selector: string): Record<string, string> {
  const at = css.indexOf(`${selector} {`);
  const body = css.slice(at, css.indexOf('}', at));
  return Object.fromEntries([...body.matchAll(/--(t-[\w-]+):\s*([^;]+);/g)].map((m) => [m[1], m[2].trim()]));
}

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2 contrast ratio of two #rrggbb colours. */
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

describe('side colours as text', () => {
  it('maps sides and signed quantities to the text tokens', () => {
    expect(sideTone('BUY')).toBe('text-buy-fg');
    expect(sideTone('SELL')).toBe('text-sell-fg');
    expect(qtyTone(5)).toBe('text-buy-fg');
    expect(qtyTone(-5)).toBe('text-sell-fg');
    expect(qtyTone(0)).toBe('text-muted');
  });

  it('are theme utilities (@theme) with a value in both themes', () => {
    expect(css).toContain('--color-buy-fg: var(--t-buy-fg);');
    expect(css).toContain('--color-sell-fg: var(--t-sell-fg);');
    expect(tokens(':root')).toMatchObject({ 't-buy-fg': '#1d4ed8', 't-sell-fg': '#c2410c' });
    expect(tokens('.dark')).toMatchObject({ 't-buy-fg': '#60a5fa', 't-sell-fg': '#fb923c' });
  });

  it.each([':root', '.dark'])('pass 4.5:1 on every surface of %s', (theme) => {
    const t = tokens(theme);
    for (const fg of ['t-buy-fg', 't-sell-fg'])
      for (const bg of ['t-app', 't-surface', 't-raised']) {
        expect(contrast(t[fg], t[bg]), `${fg} on ${bg}`).toBeGreaterThanOrEqual(4.5);
      }
  });

  it('are needed: the dark fills fall short as text', () => {
    const t = tokens('.dark');
    expect(contrast(t['t-buy'], t['t-surface'])).toBeLessThan(4.5);
    expect(contrast(t['t-sell'], t['t-surface'])).toBeLessThan(4.5);
  });
});
