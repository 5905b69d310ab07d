/** B / S open the ticket for the selected instrument (not while typing or in a dialog). */
import { useEffect } from 'react';
import { useUiStore } from '@/stores/ui';

export function shortcutSide(e: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'altKey'>): 'BUY' | 'SELL' | null {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  const k = e.key.toLowerCase();
  return k === 'b' ? 'BUY' : k === 's' ? 'SELL' : null;
}

export function useTicketShortcuts(): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName))) return;
      if (document.querySelector('[role="dialog"]')) return;
      const side = shortcutSide(e);
      const { selectedInstrumentId, openTicket } = useUiStore.getState();
      if (!side || !selectedInstrumentId) return;
      e.preventDefault();
      openTicket({ instrumentId: selectedInstrumentId, side });
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
}
