export function useTicketShortcuts(): void {}
