/** What comes back on reload: the selected instrument, the chart interval, the open watchlist and
 * book tabs, and whether the ticket asks for confirmation. */
import { create } from 'zustand';
import { persist } from 'zustand/middleware';

export const INTERVALS = ['1m', '5m', '15m', '30m', '1h', '1d'] as const;
export type Interval = (typeof INTERVALS)[number];

export interface TicketIntent {
  instrumentId: number;
  side: 'BUY' | 'SELL';
}

interface UiState {
  selectedInstrumentId: number | null;
  interval: Interval;
  watchlistId: string | null;
  ordersTab: 'working' | 'completed';
  positionsView: 'net' | 'day';
  confirmOrders: boolean;
  /** the open order ticket (not persisted) */
  ticket: TicketIntent | null;
  select: (id: number | null) => void;
  setInterval: (i: Interval) => void;
  setWatchlist: (id: string | null) => void;
  setOrdersTab: (t: 'working' | 'completed') => void;
  setPositionsView: (v: 'net' | 'day') => void;
  setConfirmOrders: (on: boolean) => void;
  openTicket: (t: TicketIntent) => void;
  closeTicket: () => void;
}

export const useUiStore = create<UiState>()(
  persist(
    (set) => ({
      selectedInstrumentId: null,
      interval: '5m',
      watchlistId: null,
      ordersTab: 'working',
      positionsView: 'net',
      confirmOrders: true,
      ticket: null,
      select: (selectedInstrumentId) => set({ selectedInstrumentId }),
      setInterval: (interval) => set({ interval }),
      setWatchlist: (watchlistId) => set({ watchlistId }),
      setOrdersTab: (ordersTab) => set({ ordersTab }),
      setPositionsView: (positionsView) => set({ positionsView }),
      setConfirmOrders: (confirmOrders) => set({ confirmOrders }),
      openTicket: (ticket) => set({ ticket, selectedInstrumentId: ticket.instrumentId }),
      closeTicket: () => set({ ticket: null }),
    }),
    {
      name: 'tradingapp.ui',
      version: 1,
      partialize: ({ ticket: _t, ...rest }) => rest,
    },
  ),
);
