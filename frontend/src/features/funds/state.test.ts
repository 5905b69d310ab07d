import { describe, expect, it } from 'vitest';
import { stateReason } from './state';

describe('stateReason', () => {
  it('says nothing while trading is active, whatever reason is stored', () => {
    expect(stateReason({ trading_state: 'ACTIVE', user_trading_state: 'ACTIVE', global_trading_state: 'ACTIVE', state_reason: 'admin: drill over' })).toBeNull();
  });
  it("gives the user's own reason when their state is in force", () => {
    expect(stateReason({ trading_state: 'HALTED', user_trading_state: 'HALTED', global_trading_state: 'ACTIVE', state_reason: 'admin: KYC pending' })).toBe('admin: KYC pending');
    expect(stateReason({ trading_state: 'REDUCING', user_trading_state: 'REDUCING', global_trading_state: 'ACTIVE', state_reason: null })).toBe('set on your account');
  });
  it('names a global state as everyone\'s', () => {
    expect(stateReason({ trading_state: 'HALTED', user_trading_state: 'ACTIVE', global_trading_state: 'HALTED', state_reason: 'admin: old' })).toBe('set for every user by an admin');
    expect(stateReason({ trading_state: 'HALTED', user_trading_state: 'REDUCING', global_trading_state: 'HALTED', state_reason: 'daily loss' })).toBe('set for every user by an admin');
  });

  it('names the kill switch reason when the global state is in force', () => {
    expect(stateReason({ trading_state: 'HALTED', user_trading_state: 'ACTIVE', global_trading_state: 'HALTED', state_reason: null, global_state_reason: 'admin: exchange outage' })).toBe('admin: exchange outage');
  });
});
