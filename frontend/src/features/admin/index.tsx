/** Admin page (/admin; admins only: the route is a lazy chunk behind RequireAdmin, the nav hides
 * it from others, the queries here run only for an admin, and the API refuses anyway). Tabs (kept
 * in ?tab=): users (role, active), risk limits (global and per user), the kill switch, the audit log.
 *
 * data-testid: admin-page, admin-denied, admin-tabs (-users, -limits, -kill, -audit);
 * users: admin-users, admin-users-row-<userId> (admin-users-email, admin-users-role,
 * admin-users-active, admin-users-error), admin-users-load-error;
 * limits: admin-limits-scope, admin-limits-form, admin-limits-<limit, kebab-case> (input; products:
 * admin-limits-allowed-products-<MIS|NRML|CNC> checkboxes), admin-limits-<limit>-error,
 * admin-limits-<limit>-override (user scope), admin-limits-<limit>-reset / -undo (global scope),
 * admin-limits-save, admin-limits-revert, admin-limits-clear-user, admin-limits-note,
 * admin-limits-error, admin-limits-load-error;
 * kill switch: admin-kill-current, admin-kill-global-state, admin-kill-global-reason,
 * admin-kill-user-<userId>, admin-kill-form, admin-kill-target, admin-kill-state
 * (-ACTIVE, -REDUCING, -HALTED), admin-kill-reason, admin-kill-reason-error, admin-kill-apply,
 * admin-kill-error, admin-kill-load-error;
 * audit: admin-audit, admin-audit-row-<id> (admin-audit-time, admin-audit-admin,
 * admin-audit-action, admin-audit-target, admin-audit-change), admin-audit-load-more,
 * admin-audit-end, admin-audit-empty, admin-audit-error;
 * confirmations: confirm, confirm-ok, confirm-cancel. */
import { useSearchParams } from 'react-router';
import { Empty, Tabs } from '@/components/ui';
import { useAuthStore } from '@/stores/auth';
import { useIsAdmin } from './api';
import { AuditTab } from './AuditTab';
import { KillSwitchTab } from './KillSwitchTab';
import { LimitsTab } from './LimitsTab';
import { UsersTab } from './UsersTab';

const TABS = [
  { value: 'users', label: 'Users' },
  { value: 'limits', label: 'Risk limits' },
  { value: 'kill', label: 'Kill switch' },
  { value: 'audit', label: 'Audit log' },
] as const;
type Tab = (typeof TABS)[number]['value'];

export default function AdminPage() {
  const isAdmin = useIsAdmin();
  const known = useAuthStore((s) => Boolean(s.user));
  const [params, setParams] = useSearchParams();
  const raw = params.get('tab');
  const tab: Tab = TABS.some((t) => t.value === raw) ? (raw as Tab) : 'users';
  if (!known) return <Empty>Loading…</Empty>;
  if (!isAdmin) {
    return (
      <section className="p-4" data-testid="admin-page">
        <p className="text-muted" data-testid="admin-denied">
          Administration is for admins only.
        </p>
      </section>
    );
  }
  return (
    <section className="flex flex-col gap-3 p-3 md:p-4" data-testid="admin-page">
      <h1 className="text-base font-semibold">Administration</h1>
      <Tabs label="Administration" value={tab} tabs={TABS} onChange={(t) => setParams({ tab: t }, { replace: true })} testId="admin-tabs" />
      <div role="tabpanel" aria-label={TABS.find((t) => t.value === tab)?.label}>
        {tab === 'users' && <UsersTab />}
        {tab === 'limits' && <LimitsTab />}
        {tab === 'kill' && <KillSwitchTab />}
        {tab === 'audit' && <AuditTab />}
      </div>
    </section>
  );
}
