/** The admin audit log, newest first: who changed what, when, before and after. */
import { useState } from 'react';
import { Button, cx, Empty, ErrorNote } from '@/components/ui';
import { formatDateTime } from '@/lib/format';
import { useIsPhone } from '@/lib/useMedia';
import { emailsOf, useAdminUsers, useAudit } from './api';
import { AUDIT_PAGE, nextAuditLimit, summarizeChange, targetLabel } from './audit';
import { TD, TH } from './ui';

const ACTIONS: Record<string, string> = {
  user_update: 'User changed',
  risk_limits: 'Risk limits',
  trading_state: 'Trading state',
};

export function AuditTab() {
  const phone = useIsPhone();
  const [limit, setLimit] = useState(AUDIT_PAGE);
  const audit = useAudit(limit);
  const users = useAdminUsers();
  const emails = emailsOf(users.data?.items);
  if (audit.error) return <ErrorNote error={audit.error} testId="admin-audit-error" />;
  if (!audit.data) return <Empty>Loading…</Empty>;
  const items = audit.data.items;
  const next = nextAuditLimit(limit, items.length);
  return (
    <div className="space-y-3">
      <div className="overflow-x-auto rounded border border-line bg-surface">
        {items.length === 0 ? (
          <Empty testId="admin-audit-empty">No admin changes yet.</Empty>
        ) : phone ? (
          <ul data-testid="admin-audit">
            {items.map((a) => (
              <li key={a.id} className="space-y-0.5 border-t border-line px-3 py-2 first:border-t-0" data-testid={`admin-audit-row-${a.id}`}>
                <div className="flex flex-wrap items-baseline gap-x-2">
                  <span className="font-medium" data-testid="admin-audit-action">
                    {ACTIONS[a.action] ?? a.action}
                  </span>
                  <span data-testid="admin-audit-target">{targetLabel(a.target, emails)}</span>
                </div>
                <div className="text-xs">
                  {summarizeChange(a.before, a.after).map((line) => (
                    <div key={line} className="[overflow-wrap:anywhere]" data-testid="admin-audit-change">
                      {line}
                    </div>
                  ))}
                </div>
                <div className="num text-xs text-muted">
                  <time dateTime={a.ts} data-testid="admin-audit-time">
                    {formatDateTime(a.ts)}
                  </time>{' '}
                  by <span data-testid="admin-audit-admin">{emails.get(a.admin_id) ?? a.admin_id}</span>
                </div>
              </li>
            ))}
          </ul>
        ) : (
          <table className="w-full border-collapse" data-testid="admin-audit">
            <thead className="bg-raised">
              <tr>
                <th className={TH}>When</th>
                <th className={TH}>Admin</th>
                <th className={TH}>What</th>
                <th className={TH}>Target</th>
                <th className={TH}>Change</th>
              </tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.id} className="border-t border-line" data-testid={`admin-audit-row-${a.id}`}>
                  <td className={cx(TD, 'num whitespace-nowrap text-muted')} data-testid="admin-audit-time">
                    <time dateTime={a.ts}>{formatDateTime(a.ts)}</time>
                  </td>
                  <td className={TD} data-testid="admin-audit-admin">
                    {emails.get(a.admin_id) ?? a.admin_id}
                  </td>
                  <td className={cx(TD, 'whitespace-nowrap')} data-testid="admin-audit-action">
                    {ACTIONS[a.action] ?? a.action}
                  </td>
                  <td className={TD} data-testid="admin-audit-target">
                    {targetLabel(a.target, emails)}
                  </td>
                  <td className={cx(TD, 'min-w-64 text-xs')} data-testid="admin-audit-change">
                    {summarizeChange(a.before, a.after).map((line) => (
                      <div key={line} className="[overflow-wrap:anywhere]">
                        {line}
                      </div>
                    ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {next !== null ? (
        <div className="flex justify-center">
          <Button onClick={() => setLimit(next)} disabled={audit.isFetching} data-testid="admin-audit-load-more">
            {audit.isFetching ? 'Loading…' : 'Load more'}
          </Button>
        </div>
      ) : (
        items.length > 0 && (
          <p className="text-center text-xs text-muted" data-testid="admin-audit-end">
            {items.length} change{items.length === 1 ? '' : 's'}
            {limit >= 500 && items.length >= 500 ? ' (the newest 500)' : ''}.
          </p>
        )
      )}
    </div>
  );
}
