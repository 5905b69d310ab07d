/** The phone's More screen: the pages the bottom bar has no room for (trades, broker accounts,
 * admin for admins). A desktop has them all as tabs, so /more there goes home. */
import { Link, Navigate } from 'react-router';
import { useIsPhone } from '@/lib/useMedia';
import { useAuthStore } from '@/stores/auth';
import { moreItems } from './nav';

export default function MorePage() {
  const phone = useIsPhone();
  const role = useAuthStore((s) => s.user?.role);
  if (!phone) return <Navigate to="/" replace />;
  return (
    <section className="min-h-full bg-surface" data-testid="more-page">
      <h1 className="border-b border-line px-4 py-3 text-base font-semibold">More</h1>
      <nav aria-label="More pages">
        <ul>
          {moreItems(role).map((n) => (
            <li key={n.to}>
              <Link to={n.to} data-testid={`more-${n.testId.slice(4)}`} className="flex items-center gap-3 border-b border-line px-4 py-3 hover:bg-raised">
                <span className="min-w-0 flex-1">
                  <span className="block font-medium">{n.label}</span>
                  {n.hint && <span className="block text-xs text-muted">{n.hint}</span>}
                </span>
                <span aria-hidden="true" className="text-muted">
                  ›
                </span>
              </Link>
            </li>
          ))}
        </ul>
      </nav>
    </section>
  );
}
