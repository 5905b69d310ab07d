/** The WebSocket connection's state, for the header's indicator and for screens that must know
 * whether live data is flowing. Written only by src/features/live/socket.ts. */
import { create } from 'zustand';

export type SocketStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SocketState {
  status: SocketStatus;
  /** consecutive failed attempts since the last open */
  attempt: number;
  /** epoch ms of the next reconnect attempt, while reconnecting */
  nextRetryAt: number | null;
  lastClose: { code: number; reason: string } | null;
  /** increments on every (re)open: screens may refetch on change */
  openCount: number;
  set: (patch: Partial<Omit<SocketState, 'set'>>) => void;
}

export const useSocketStore = create<SocketState>()((set) => ({
  status: 'idle',
  attempt: 0,
  nextRetryAt: null,
  lastClose: null,
  openCount: 0,
  set: (patch) => set(patch),
}));
