/** Users: role and active per user. Deactivating (which ends the user's sessions at once) is
 * confirmed; an admin cannot demote or deactivate themself (controls disabled; the API says 409). */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { Badge, ConfirmDialog, cx, Empty, ErrorNote } from '@/components/ui';
import { describeError } from '@/features/positions/describeError';
import { formatDateTime } from '@/lib/format';
import { useAuthStore } from '@/stores/auth';
import { adminKeys, useAdminUsers } from './api';
import type { AdminUser } from '@/api/types';
import type { Role } from './types';
import { SELECT, TD, TH } from './ui';

const ROLES: readonly Role[] = ['admin', 'trader', 'viewer'];
type Change = { role?: Role; active?: boolean };

export function UsersTab() {
  const users = useAdminUsers();
  const myId = useAuthStore((s) => s.user?.id);
  const client = useQueryClient();
  const [deactivating, setDeactivating] = useState<AdminUser | null>(null);
  const [failed, setFailed] = useState<{ id: string; message: string } | null>(null);
  const patch = useMutation({
    mutationFn: ({ user, change }: { user: AdminUser; change: Change }) => api.patch<AdminUser>(`/admin/users/${user.id}`, change),
    onMutate: () => setFailed(null),
    onSuccess: (updated, { change }) => {
      client.setQueryData<{ items: AdminUser[] }>(adminKeys.users, (old) => old && { items: old.items.map((u) => (u.id === updated.id ? updated : u)) });
      client.invalidateQueries({ queryKey: adminKeys.audit });
      toast.success(
        change.role ? `${updated.email} is now ${updated.role}` : `${updated.email} ${updated.active ? 'reactivated' : 'deactivated; their sessions ended'}`,
      );
      setDeactivating(null);
    },
    onError: (err, { user }) => {
      setFailed({ id: user.id, message: describeError(err) });
      setDeactivating(null);
    },
  });

  if (users.error) return <ErrorNote error={users.error} testId="admin-users-load-error" />;
  if (!users.data) return <Empty>Loading…</Empty>;
  const busyId = patch.isPending ? patch.variables?.user.id : null;

  return (
    <div className="overflow-x-auto rounded border border-line bg-surface">
      <table className="w-full border-collapse" data-testid="admin-users">
        <thead className="bg-raised">
          <tr>
            <th className={TH}>User</th>
            <th className={TH}>Role</th>
            <th className={TH}>Active</th>
            <th className={cx(TH, 'hidden md:table-cell')}>Created</th>
          </tr>
        </thead>
        <tbody>
          {users.data.items.map((u) => {
            const self = u.id === myId;
            const busy = busyId === u.id;
            return (
              <tr key={u.id} className={cx('border-t border-line', !u.active && 'text-muted')} data-testid={`admin-users-row-${u.id}`}>
                <td className={TD}>
                  <div className="font-medium" data-testid="admin-users-email">
                    {u.email} {self && <Badge tone="accent">you</Badge>}
                  </div>
                  {u.name && <div className="text-xs text-muted">{u.name}</div>}
                  {failed?.id === u.id && (
                    <p role="alert" className="mt-1 text-xs text-danger" data-testid="admin-users-error">
                      {failed.message}
                    </p>
                  )}
                </td>
                <td className={TD}>
                  <select
                    className={SELECT}
                    value={u.role}
                    disabled={self || busy}
                    title={self ? 'You cannot change your own role' : undefined}
                    aria-label={`Role of ${u.email}`}
                    data-testid="admin-users-role"
                    onChange={(e) => patch.mutate({ user: u, change: { role: e.target.value as Role } })}
                  >
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {r}
                      </option>
                    ))}
                  </select>
                </td>
                <td className={TD}>
                  <label className="inline-flex items-center gap-2">
                    <input
                      type="checkbox"
                      className="h-4 w-4 accent-[var(--t-accent)]"
                      checked={u.active}
                      disabled={self || busy}
                      aria-label={`${u.email} active`}
                      data-testid="admin-users-active"
                      onChange={(e) => (e.target.checked ? patch.mutate({ user: u, change: { active: true } }) : setDeactivating(u))}
                    />
                    <span className="text-xs">{u.active ? 'active' : 'inactive'}</span>
                  </label>
                </td>
                <td className={cx(TD, 'hidden text-xs text-muted md:table-cell')}>{formatDateTime(u.created_at)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <ConfirmDialog
        open={deactivating !== null}
        title={`Deactivate ${deactivating?.email ?? ''}?`}
        body="They are logged out everywhere at once and cannot log in until reactivated. Their open orders stay."
        confirmLabel="Deactivate"
        busy={patch.isPending}
        onConfirm={() => deactivating && patch.mutate({ user: deactivating, change: { active: false } })}
        onCancel={() => setDeactivating(null)}
      />
    </div>
  );
}
