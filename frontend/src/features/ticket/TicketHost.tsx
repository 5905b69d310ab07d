export function TicketHost() {
  return null;
}
