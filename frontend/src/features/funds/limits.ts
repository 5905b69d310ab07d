/** The risk limits a user trades under: names, labels, kinds, and how each is shown (Indian digit
 * grouping through lib/format). Shared by the Funds page (read-only) and the admin editor. */
import type { RiskLimits, TradingState } from '@/api/types';
import { formatAmount, formatPrice, formatQty, MISSING } from '@/lib/format';

export type LimitName = keyof RiskLimits;
export type LimitKind = 'int' | 'amount' | 'percent' | 'products' | 'segments';

export interface LimitMeta {
  name: LimitName;
  label: string;
  kind: LimitKind;
  hint: string;
}

// A Record over every RiskLimits key: a limit added to the API and not here fails the typecheck.
const META: Record<LimitName, Omit<LimitMeta, 'name'>> = {
  max_order_quantity: { label: 'Max order quantity', kind: 'int', hint: 'units in one order' },
  max_order_notional: { label: 'Max order value', kind: 'amount', hint: 'quantity x price of one order' },
  max_position_quantity: { label: 'Max position quantity', kind: 'int', hint: 'units held in one instrument' },
  max_open_orders: { label: 'Max open orders', kind: 'int', hint: 'working at once' },
  orders_per_second: { label: 'Orders per second', kind: 'int', hint: 'sustained rate' },
  order_burst: { label: 'Order burst', kind: 'int', hint: 'orders allowed at once above the rate' },
  max_daily_loss: { label: 'Max daily loss', kind: 'amount', hint: 'past it the account only reduces' },
  max_orders_per_day: { label: 'Max orders per day', kind: 'int', hint: 'per session day' },
  allowed_products: { label: 'Allowed products', kind: 'products', hint: 'MIS, NRML, CNC' },
  allowed_segments: { label: 'Allowed segments', kind: 'segments', hint: 'exchange segments, e.g. NSECM' },
  margin_cnc_percent: { label: 'Margin CNC', kind: 'percent', hint: '% of order value blocked' },
  margin_nrml_percent: { label: 'Margin NRML', kind: 'percent', hint: '% of order value blocked' },
  margin_mis_percent: { label: 'Margin MIS', kind: 'percent', hint: '% of order value blocked' },
};

export const LIMITS: readonly LimitMeta[] = Object.entries(META).map(([name, meta]) => ({ name: name as LimitName, ...meta }));

export const PRODUCTS = ['MIS', 'NRML', 'CNC'] as const;

/** A limit's name in a data-testid (kebab-case): max_order_quantity -> max-order-quantity. */
export function limitTestId(name: LimitName): string {
  return name.replace(/_/g, '-');
}

/** A limit's value for display: 1,00,000 / ₹5,00,00,000.00 / 20% / 12.5% / MIS, NRML. */
export function formatLimit(kind: LimitKind, value: unknown): string {
  if (value === null || value === undefined || value === '') return MISSING;
  switch (kind) {
    case 'int':
      return formatQty(value as number);
    case 'amount': {
      const text = formatAmount(value as string);
      return text === MISSING ? text : `₹${text}`;
    }
    case 'percent': {
      const text = String(value);
      if (!Number.isFinite(Number(text))) return MISSING;
      // whole percents without decimals; otherwise as many places as the value has (2 to 4)
      return Number.isInteger(Number(text)) ? `${formatQty(text)}%` : `${formatPrice(text, text)}%`;
    }
    case 'products':
    case 'segments':
      return Array.isArray(value) && value.length ? value.join(', ') : MISSING;
  }
}

/** Badge tone and meaning of a trading state. */
export const STATE_INFO: Record<TradingState, { tone: 'up' | 'warn' | 'danger'; effect: string }> = {
  ACTIVE: { tone: 'up', effect: 'orders are accepted' },
  REDUCING: { tone: 'warn', effect: 'only orders that shrink a position are accepted' },
  HALTED: { tone: 'danger', effect: 'new orders and modifications that add exposure are refused; cancels still pass' },
};
