/** Shapes of the API, from the generated OpenAPI types (src/api/schema.d.ts, `npm run gen:api`).
 * Import types from here, never hand-copy a response shape. */
import type { components, paths } from './schema';

type S = components['schemas'];
export type { paths };
export type User = S['User'];
export type Tokens = S['Tokens'];
export type Instrument = S['Instrument'];
export type Order = S['Order'];
export type NewOrder = S['NewOrder'];
// openapi.py's _obj(props, []) marks every property required ([] is falsy there); these bodies are
// all-optional in fact (reported to the backend owner), hence Partial.
export type ModifyOrder = Partial<S['ModifyOrder']>;
export type UserChange = Partial<S['UserChange']>;
export type TradingStateChange = Partial<S['TradingStateChange']>;
export type RiskLimitOverrides = Partial<S['RiskLimitOverrides']>;
export type RiskLimitsChange = Partial<S['RiskLimitsChange']>;
export type RiskLimitsView = S['RiskLimitsView'];
export type BrokerAccount = S['BrokerAccount'];
export type Funds = S['Funds'];
export type Account = S['Account'];
export type TradingState = Account['trading_state'];
export type RiskLimits = S['RiskLimits'];
export type AdminUser = S['AdminUser'];
export type OrderStatus = Order['status'];
export type Side = Order['side'];

export type Quote = S['Quote'];
export type Trade = S['Trade'];
export type Position = S['Position'];
export type DayPosition = S['DayPosition'];
export type Candle = S['Candle'];
export type OrderEvent = S['OrderEvent'];
export type Page<T> = { items: T[]; next_cursor?: string | null };

export const FINAL_STATUSES: readonly OrderStatus[] = ['FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED'];
export function isWorking(status: OrderStatus): boolean {
  return !FINAL_STATUSES.includes(status);
}

export type Watchlist = S['Watchlist'];
export type Meta = S['Meta'];
export type MarginEstimate = S['OrderEstimate'];
