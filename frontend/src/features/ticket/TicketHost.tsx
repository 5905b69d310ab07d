/** Mounts the order ticket when one is open (B/S anywhere, or the buttons). */
import { useInstrument } from '@/api/queries';
import { Dialog } from '@/components/ui';
import { useLiveQuotes } from '@/features/live';
import { useUiStore } from '@/stores/ui';
import { OrderTicket } from './OrderTicket';

export function TicketHost() {
  const ticket = useUiStore((s) => s.ticket);
  const close = useUiStore((s) => s.closeTicket);
  const instrument = useInstrument(ticket?.instrumentId).data;
  useLiveQuotes(ticket ? [ticket.instrumentId] : [], 'full');
  if (!ticket || !instrument) return null;
  return (
    <Dialog open onClose={close} testId="ticket-dialog" className="h-full sm:h-auto" labelledBy="ticket-title">
      <OrderTicket key={instrument.id} instrument={instrument} side={ticket.side} onClose={close} />
    </Dialog>
  );
}
