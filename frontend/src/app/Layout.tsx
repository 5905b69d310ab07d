/** The shell: header, the watchlist column (desktop), the page, the phone's bottom tab bar, the
 * order ticket and toasts. Live connection and token refresh run while this is mounted. */
import { Suspense, useEffect } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { Toaster } from 'sonner';
import { useMe } from '@/api/queries';
import { cx } from '@/components/ui';
import { useTokenRefresh } from '@/features/auth/session';
import Header, { TradingStateBanner } from '@/features/header/Header';
import { useLiveConnection } from '@/features/live';
import { OrderToasts } from '@/features/orders/OrderToasts';
import { TicketHost } from '@/features/ticket/TicketHost';
import { useTicketShortcuts } from '@/features/ticket/shortcuts';
import { WatchlistPanel } from '@/features/watchlist/WatchlistPanel';
import { useIsPhone } from '@/lib/useMedia';
import { useAuthStore } from '@/stores/auth';
import { useThemeStore } from '@/stores/theme';
import { BottomTabBar } from './BottomTabBar';
import { NAV } from './nav';

function useSessionUser() {
  const me = useMe();
  const setUser = useAuthStore((s) => s.setUser);
  useEffect(() => {
    if (me.data) setUser(me.data);
  }, [me.data, setUser]);
}

function DesktopNav() {
  const role = useAuthStore((s) => s.user?.role);
  const { pathname } = useLocation();
  return (
    <nav aria-label="Pages" className="flex shrink-0 gap-1 overflow-x-auto border-b border-line bg-surface px-2" data-testid="desktop-nav">
      {NAV.filter((n) => n.desktop && (!n.adminOnly || role === 'admin')).map((n) => (
        <NavLink
          key={n.to}
          to={n.to}
          data-testid={n.testId}
          className={({ isActive }) =>
            cx(
              '-mb-px whitespace-nowrap border-b-2 px-3 py-2 font-medium',
              isActive || (n.to === '/chart' && pathname === '/') ? 'border-accent text-fg' : 'border-transparent text-muted hover:text-fg',
            )
          }
        >
          {n.label}
        </NavLink>
      ))}
    </nav>
  );
}

export function Layout() {
  const phone = useIsPhone();
  const theme = useThemeStore((s) => s.theme);
  useLiveConnection();
  useTokenRefresh();
  useSessionUser();
  useTicketShortcuts();
  return (
    <div className="flex h-full flex-col" data-testid="app-shell">
      <Header />
      <TradingStateBanner />
      <div className="flex min-h-0 flex-1">
        {!phone && (
          <aside className="flex w-80 shrink-0 flex-col border-r border-line bg-surface" aria-label="Watchlist">
            <WatchlistPanel />
          </aside>
        )}
        <main className="flex min-w-0 flex-1 flex-col">
          {!phone && <DesktopNav />}
          <div className="min-h-0 flex-1 overflow-auto">
            <Suspense fallback={<p className="p-4 text-muted">Loading…</p>}>
              <Outlet />
            </Suspense>
          </div>
        </main>
      </div>
      {phone && <BottomTabBar />}
      <TicketHost />
      <OrderToasts />
      <Toaster theme={theme} position={phone ? 'top-center' : 'bottom-right'} richColors closeButton />
    </div>
  );
}
