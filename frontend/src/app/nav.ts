/** The terminal's pages: desktop tabs along the top, phone tabs in the bottom bar. */
export interface NavItem {
  to: string;
  label: string;
  testId: string;
  adminOnly?: boolean;
  phone?: boolean;
  desktop?: boolean;
}

export const NAV: NavItem[] = [
  { to: '/', label: 'Watchlist', testId: 'nav-watchlist', phone: true, desktop: false },
  { to: '/chart', label: 'Chart', testId: 'nav-chart', phone: true, desktop: true },
  { to: '/orders', label: 'Orders', testId: 'nav-orders', phone: true, desktop: true },
  { to: '/positions', label: 'Positions', testId: 'nav-positions', phone: true, desktop: true },
  { to: '/trades', label: 'Trades', testId: 'nav-trades', desktop: true },
  { to: '/funds', label: 'Funds', testId: 'nav-funds', phone: true, desktop: true },
  { to: '/accounts', label: 'Broker accounts', testId: 'nav-accounts', desktop: true },
  { to: '/admin', label: 'Admin', testId: 'nav-admin', adminOnly: true, desktop: true },
];
