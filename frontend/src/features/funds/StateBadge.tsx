import type { TradingState } from '@/api/types';
import { Badge } from '@/components/ui';
import { STATE_INFO } from './limits';

/** ACTIVE (green) / REDUCING (amber) / HALTED (red), its effect as the tooltip. */
export function StateBadge({ state, testId }: { state: TradingState | null | undefined; testId?: string }) {
  if (!state) return null;
  return (
    <Badge tone={STATE_INFO[state].tone} data-testid={testId} title={STATE_INFO[state].effect}>
      {state}
    </Badge>
  );
}
