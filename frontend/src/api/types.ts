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

// --- Routes being added to the backend (/work/briefs/api-additions.md). Until `npm run gen:api`
// picks them up, their shapes are written here once; replace with S['...'] when generated.
export interface Watchlist {
  id: string;
  name: string;
  position: number;
  instruments: Instrument[];
}
export interface Meta {
  server_time: string;
  timezone: string;
  market: { open: boolean; opens_at: string | null; closes_at: string | null };
  registration_open: boolean;
  broker: string;
  websocket_url: string | null;
  websocket_port: number;
  version: string;
}
export interface MarginEstimate {
  required_margin: string;
  available: string;
  sufficient: boolean;
  price: string | null;
}
