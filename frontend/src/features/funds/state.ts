/** Why an account trades under its state, pure. The effective state is the stricter of the user's
 * own and the global one, and the reason shown is the one of the state in force (the kill switch's
 * when the global state rules). A stored reason outlives its state (an admin's resume leaves
 * "admin: ..."), so it is shown only while its state is the one in force. */
import type { Account } from '@/api/types';

type StateFields = 'trading_state' | 'user_trading_state' | 'global_trading_state' | 'state_reason';

export function stateReason(a: Pick<Account, StateFields> & { global_state_reason?: string | null }): string | null {
  if (a.trading_state === 'ACTIVE') return null;
  if (a.user_trading_state === a.trading_state) return a.state_reason || 'set on your account';
  return a.global_state_reason || 'set for every user by an admin';
}
