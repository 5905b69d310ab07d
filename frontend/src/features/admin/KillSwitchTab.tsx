/** The kill switch: set everyone's or one user's trading state (ACTIVE / REDUCING / HALTED) with a
 * required reason, confirmed by a dialog that names the effect; the current states above it. */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { ValidationError } from '@/api/errors';
import { qk } from '@/api/queryClient';
import { Button, ConfirmDialog, Empty, ErrorNote, Field, Segmented } from '@/components/ui';
import { StateBadge } from '@/features/funds/StateBadge';
import { describeError } from '@/features/positions/describeError';
import { adminKeys, emailsOf, useAdminUsers, useKillSwitch } from './api';
import { checkReason, REASON_MAX, stateChangeEffect, stateChangeTitle } from './killSwitch';
import type { TradingState } from '@/api/types';
import type { KillSwitchAnswer } from './types';
import { SELECT } from './ui';

const STATES: readonly TradingState[] = ['ACTIVE', 'REDUCING', 'HALTED'];

export function KillSwitchTab() {
  const states = useKillSwitch();
  const users = useAdminUsers();
  const client = useQueryClient();
  const emails = emailsOf(users.data?.items);
  const [target, setTarget] = useState('global');
  const [state, setState] = useState<TradingState>('HALTED');
  const [reason, setReason] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const everyone = target === 'global';
  const who = everyone ? 'everyone' : (emails.get(target) ?? target);

  const apply = useMutation({
    mutationFn: () =>
      api.post<KillSwitchAnswer>('/admin/kill-switch', { state, reason: reason.trim(), ...(everyone ? {} : { user_id: target }) }),
    onSuccess: (answer) => {
      toast.success(`${who}: ${answer.previous} → ${answer.trading_state}`);
      client.invalidateQueries({ queryKey: adminKeys.killSwitch });
      client.invalidateQueries({ queryKey: adminKeys.audit });
      client.invalidateQueries({ queryKey: qk.account });
      setReason('');
      setConfirming(false);
    },
    onError: (err) => {
      setConfirming(false);
      if (err instanceof ValidationError) {
        const { reason: r, state: s, user_id: u, ...rest } = err.fields;
        setErrors({ ...(r && { reason: r }), ...(s && { state: s }), ...(u && { target: u }) });
        setGeneral(Object.keys(rest).length ? Object.entries(rest).map(([k, v]) => `${k}: ${v}`).join('; ') : null);
      } else setGeneral(describeError(err));
    },
  });

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const r = checkReason(reason);
    setErrors(r ? { reason: r } : {});
    setGeneral(null);
    if (!r) setConfirming(true);
  };

  return (
    <div className="grid gap-3 lg:grid-cols-2">
      <div className="space-y-2 rounded border border-line bg-surface p-3" data-testid="admin-kill-current">
        <h2 className="text-sm font-semibold">Current states</h2>
        {states.error ? (
          <ErrorNote error={states.error} testId="admin-kill-load-error" />
        ) : !states.data ? (
          <Empty>Loading…</Empty>
        ) : (
          <ul className="space-y-2">
            <li className="flex flex-wrap items-center gap-2">
              <span className="font-medium">Everyone</span>
              <StateBadge state={states.data.global.trading_state} testId="admin-kill-global-state" />
              {states.data.global.reason && (
                <span className="text-xs text-muted" data-testid="admin-kill-global-reason">
                  {states.data.global.reason}
                </span>
              )}
            </li>
            {states.data.users.map((u) => (
              <li key={u.user_id} className="flex flex-wrap items-center gap-2" data-testid={`admin-kill-user-${u.user_id}`}>
                <button type="button" className="font-medium text-accent hover:underline" onClick={() => setTarget(u.user_id)} title="Choose in the form">
                  {emails.get(u.user_id) ?? u.user_id}
                </button>
                <StateBadge state={u.trading_state} />
                {u.reason && <span className="text-xs text-muted">{u.reason}</span>}
              </li>
            ))}
            {states.data.users.length === 0 && <li className="text-xs text-muted">No user has a state of their own.</li>}
          </ul>
        )}
      </div>

      <form onSubmit={onSubmit} noValidate className="space-y-3 rounded border border-line bg-surface p-3" data-testid="admin-kill-form">
        <h2 className="text-sm font-semibold">Change a trading state</h2>
        {general && (
          <p role="alert" className="text-danger" data-testid="admin-kill-error">
            {general}
          </p>
        )}
        <Field label="Applies to" htmlFor="admin-kill-target" error={errors.target} testId="admin-kill-target">
          <select id="admin-kill-target" className={`${SELECT} w-full`} value={target} onChange={(e) => setTarget(e.target.value)} data-testid="admin-kill-target">
            <option value="global">Everyone (global)</option>
            {users.data?.items.map((u) => (
              <option key={u.id} value={u.id}>
                {u.email}
              </option>
            ))}
          </select>
        </Field>
        <Field label="State" htmlFor="admin-kill-state" error={errors.state} testId="admin-kill-state">
          <div id="admin-kill-state">
            <Segmented label="Trading state" value={state} options={STATES} onChange={setState} testId="admin-kill-state" />
          </div>
        </Field>
        <Field label={`Reason (required, at most ${REASON_MAX} characters)`} htmlFor="admin-kill-reason" error={errors.reason} testId="admin-kill-reason">
          <textarea
            id="admin-kill-reason"
            value={reason}
            maxLength={REASON_MAX + 50}
            rows={2}
            onChange={(e) => setReason(e.target.value)}
            aria-invalid={errors.reason ? true : undefined}
            aria-describedby={errors.reason ? 'admin-kill-reason-error' : undefined}
            className="w-full rounded border border-line bg-surface px-2 py-1 text-fg outline-none focus:border-accent focus-visible:ring-1 focus-visible:ring-accent aria-[invalid=true]:border-danger"
            data-testid="admin-kill-reason"
          />
        </Field>
        <p className="text-xs text-muted">{stateChangeEffect(state, everyone)}</p>
        <div className="flex justify-end">
          <Button type="submit" variant={state === 'ACTIVE' ? 'primary' : 'danger'} disabled={apply.isPending} data-testid="admin-kill-apply">
            {state === 'HALTED' ? 'Halt' : state === 'REDUCING' ? 'Reduce only' : 'Resume'} {everyone ? 'everyone' : 'this user'}
          </Button>
        </div>
      </form>

      <ConfirmDialog
        open={confirming}
        title={stateChangeTitle(state, who)}
        body={
          <div className="space-y-2">
            <p>{stateChangeEffect(state, everyone)}</p>
            <p>
              Reason: <span className="text-fg">{reason.trim()}</span>
            </p>
          </div>
        }
        confirmLabel={state === 'HALTED' ? 'Halt trading' : state === 'REDUCING' ? 'Set reduce-only' : 'Resume trading'}
        busy={apply.isPending}
        onConfirm={() => apply.mutate()}
        onCancel={() => setConfirming(false)}
      />
    </div>
  );
}
