/** The terminal's pages: desktop tabs along the top, phone tabs in the bottom bar. A phone's bar
 * has room for five pages and "More"; the rest (`more: true`) are links on the More screen. */
export interface NavItem {
  to: string;
  label: string;
  testId: string;
  adminOnly?: boolean;
  phone?: boolean;
  desktop?: boolean;
  /** on a phone, reached from the More screen */
  more?: boolean;
  /** one line on the More screen */
  hint?: string;
}

export const NAV: NavItem[] = [
  { to: '/', label: 'Watchlist', testId: 'nav-watchlist', phone: true, desktop: false },
  { to: '/chart', label: 'Chart', testId: 'nav-chart', phone: true, desktop: true },
  { to: '/orders', label: 'Orders', testId: 'nav-orders', phone: true, desktop: true },
  { to: '/positions', label: 'Positions', testId: 'nav-positions', phone: true, desktop: true },
  { to: '/trades', label: 'Trades', testId: 'nav-trades', desktop: true, more: true, hint: "Today's and past fills" },
  { to: '/funds', label: 'Funds', testId: 'nav-funds', phone: true, desktop: true },
  { to: '/accounts', label: 'Broker accounts', testId: 'nav-accounts', desktop: true, more: true, hint: 'Link, replace or unlink an XTS account' },
  { to: '/admin', label: 'Admin', testId: 'nav-admin', adminOnly: true, desktop: true, more: true, hint: 'Users, risk limits, kill switch, audit log' },
  { to: '/more', label: 'More', testId: 'nav-more', phone: true, desktop: false },
];

const allowed = (n: NavItem, role: string | undefined) => !n.adminOnly || role === 'admin';

/** The phone's bottom tabs. */
export function phoneTabs(role: string | undefined): NavItem[] {
  return NAV.filter((n) => n.phone && allowed(n, role));
}

/** The links of the phone's More screen (Admin for admins only). */
export function moreItems(role: string | undefined): NavItem[] {
  return NAV.filter((n) => n.more && allowed(n, role));
}

/** Whether the More tab is the current one: on /more or a page reached from it. */
export function inMore(pathname: string): boolean {
  const path = pathname.replace(/\/+$/, '') || '/';
  return path === '/more' || NAV.some((n) => n.more && (path === n.to || path.startsWith(`${n.to}/`)));
}
