/** The kill switch's words, pure: what a state change will do, named before it is confirmed. */
import { STATE_INFO } from '@/features/funds/limits';
import type { TradingState } from '@/api/types';

export const REASON_MAX = 200;

/** "Halt trading for everyone?" / "Set priya@example.com to reduce-only?" / "Resume trading for ...?" */
export function stateChangeTitle(state: TradingState, target: string): string {
  switch (state) {
    case 'HALTED':
      return `Halt trading for ${target}?`;
    case 'REDUCING':
      return `Set ${target} to reduce-only?`;
    case 'ACTIVE':
      return `Resume trading for ${target}?`;
  }
}

/** The effect in a sentence, for the confirmation's body. */
export function stateChangeEffect(state: TradingState, everyone: boolean): string {
  const who = everyone ? 'Every user' : 'This user';
  const scope = everyone
    ? ' A user halted or reducing on their own stays so.'
    : ' The global state still applies when it is stricter.';
  switch (state) {
    case 'HALTED':
      return `${who}: ${STATE_INFO.HALTED.effect}.${scope}`;
    case 'REDUCING':
      return `${who}: ${STATE_INFO.REDUCING.effect}; cancels still pass.${scope}`;
    case 'ACTIVE':
      return `${who}: ${STATE_INFO.ACTIVE.effect} again.${scope}`;
  }
}

/** The reason is required here (the API makes it optional): whoever reads the audit log later
 * should know why. */
export function checkReason(text: string): string | null {
  const t = text.trim();
  if (!t) return 'a reason is required';
  if (t.length > REASON_MAX) return `at most ${REASON_MAX} characters`;
  return null;
}
