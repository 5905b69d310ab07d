/** Admin shapes. Users and limits come from the generated OpenAPI types; the kill switch's and the
 * audit log's answers are untyped there (ANY), so their shapes (tradingapp/services/admin.py) are
 * written here until the document names them. */
import type { components } from '@/api/schema';
import type { AdminUser, TradingState } from '@/api/types';

export type { AdminUser, TradingState };
export type RiskLimitsView = components['schemas']['RiskLimitsView'];
export type RiskLimitOverrides = components['schemas']['RiskLimitOverrides'];
export type Role = AdminUser['role'];

export interface StateEntry {
  trading_state: TradingState;
  reason: string | null;
}
export interface KillSwitchView {
  global: StateEntry;
  users: (StateEntry & { user_id: string })[];
}
export interface KillSwitchAnswer {
  user_id: string | null;
  trading_state: TradingState;
  previous: TradingState;
  reason: string;
}
export interface AuditEntry {
  id: number;
  ts: string;
  admin_id: string;
  action: string;
  target: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}
