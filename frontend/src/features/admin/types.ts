/** Admin shapes the OpenAPI document does not name. Users and limits (AdminUser, RiskLimitsView,
 * RiskLimitOverrides) come from `@/api/types`; the kill switch's and the audit log's answers are
 * untyped there (ANY), so their shapes (tradingapp/services/accounts/admin.py) are written here
 * until the document names them. */
import type { AdminUser, TradingState } from '@/api/types';

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
