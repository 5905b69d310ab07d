/** Why an account trades under its state, pure. The effective state is the stricter of the user's
 * own and the global one; /account carries only the user's own reason, so a global state is named
 * as such. A user's stored reason outlives their state (an admin's resume leaves "admin: ..."), so
 * it is shown only while their own state is the one in force. */
import type { Account } from '@/api/types';

export function stateReason(a: Pick<Account, 'trading_state' | 'user_trading_state' | 'global_trading_state' | 'state_reason'>): string | null {
  if (a.trading_state === 'ACTIVE') return null;
  if (a.user_trading_state === a.trading_state) return a.state_reason || 'set on your account';
  return 'set for every user by an admin';
}
