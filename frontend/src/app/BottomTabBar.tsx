/** The phone's bottom tab bar: five pages and More (the screen linking to the rest); six columns. */
import { NavLink, useLocation } from 'react-router';
import { cx } from '@/components/ui';
import { useAuthStore } from '@/stores/auth';
import { inMore, phoneTabs } from './nav';

export function BottomTabBar() {
  const role = useAuthStore((s) => s.user?.role);
  const { pathname } = useLocation();
  const tabs = phoneTabs(role);
  return (
    <nav
      aria-label="Pages"
      className="grid shrink-0 grid-cols-6 border-t border-line bg-surface pb-[env(safe-area-inset-bottom)]"
      data-testid="bottom-tabs"
    >
      {tabs.map((n) => (
        <NavLink
          key={n.to}
          to={n.to}
          end
          data-testid={`tab-${n.testId.slice(4)}`}
          className={({ isActive }) =>
            cx('truncate px-0.5 py-3 text-center text-xs font-medium', isActive || (n.to === '/more' && inMore(pathname)) ? 'text-accent' : 'text-muted')
          }
        >
          {n.label}
        </NavLink>
      ))}
    </nav>
  );
}
