/** Risk limits: the global values (each can go back to its built-in default) or one user's
 * overrides (each limit overridden or inherited from the global value). Save sends only what
 * changed; every field's error, ours or the server's, shows beside it. */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState, type FormEvent } from 'react';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { ValidationError } from '@/api/errors';
import { qk } from '@/api/queryClient';
import { Button, ConfirmDialog, cx, Empty, ErrorNote, Field, Input } from '@/components/ui';
import { formatLimit, LIMITS, limitTestId, PRODUCTS, type LimitMeta, type LimitName } from '@/features/funds/limits';
import { describeError } from '@/features/positions/describeError';
import { adminKeys, useAdminUsers, useRiskLimits } from './api';
import { buildChanges, globalDraft, limitErrorsFromServer, limitsBody, toText, userDraft, type Draft } from './limitsForm';
import type { AdminUser, RiskLimitsView } from '@/api/types';
import { SELECT } from './ui';

type Errors = Partial<Record<LimitName, string>>;

function ProductsInput({ id, value, disabled, onChange, testId }: { id: string; value: string; disabled: boolean; onChange: (v: string) => void; testId: string }) {
  const chosen = value.split(/[,\s]+/).filter(Boolean);
  return (
    <div id={id} role="group" className="flex h-9 items-center gap-3" data-testid={testId}>
      {PRODUCTS.map((p) => (
        <label key={p} className={cx('inline-flex items-center gap-1', disabled && 'opacity-50')}>
          <input
            type="checkbox"
            className="h-4 w-4 accent-[var(--t-accent)]"
            checked={chosen.includes(p)}
            disabled={disabled}
            data-testid={`${testId}-${p}`}
            onChange={(e) => onChange(PRODUCTS.filter((x) => (x === p ? e.target.checked : chosen.includes(x))).join(', '))}
          />
          {p}
        </label>
      ))}
    </div>
  );
}

function LimitRow({
  meta,
  value,
  reference,
  referenceLabel,
  scope,
  error,
  onChange,
  onToggle,
}: {
  meta: LimitMeta;
  value: string | null;
  reference: unknown;
  referenceLabel: string;
  scope: 'global' | 'user';
  error?: string;
  onChange: (v: string) => void;
  onToggle: (on: boolean) => void;
}) {
  const testId = `admin-limits-${limitTestId(meta.name)}`;
  const id = `admin-limits-${meta.name}`;
  const inherited = value === null;
  const label = (
    <span className="flex flex-wrap items-baseline justify-between gap-2">
      <span>
        {meta.label} <span className="font-normal">({meta.hint})</span>
      </span>
      <span className="font-normal">
        {referenceLabel}: <span className="num">{formatLimit(meta.kind, reference)}</span>
      </span>
    </span>
  );
  return (
    <div className={cx('rounded border border-line p-2', error && 'border-danger')}>
      <Field label={label} htmlFor={id} error={error} testId={testId}>
        <div className="flex items-center gap-2">
          <div className="min-w-0 flex-1">
            {meta.kind === 'products' ? (
              <ProductsInput id={id} value={value ?? toText(reference) ?? ''} disabled={inherited} onChange={onChange} testId={testId} />
            ) : (
              <Input
                id={id}
                value={value ?? ''}
                placeholder={inherited ? formatLimit(meta.kind, reference) : undefined}
                disabled={inherited}
                inputMode={meta.kind === 'int' || meta.kind === 'amount' || meta.kind === 'percent' ? 'decimal' : 'text'}
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? `${id}-error` : undefined}
                onChange={(e) => onChange(e.target.value)}
                className="num"
                data-testid={testId}
              />
            )}
          </div>
          {scope === 'user' ? (
            <label className="inline-flex shrink-0 items-center gap-1 text-xs">
              <input type="checkbox" className="h-4 w-4 accent-[var(--t-accent)]" checked={!inherited} onChange={(e) => onToggle(e.target.checked)} data-testid={`${testId}-override`} />
              override
            </label>
          ) : inherited ? (
            <Button size="sm" onClick={() => onToggle(true)} data-testid={`${testId}-undo`}>
              Undo
            </Button>
          ) : (
            <Button size="sm" variant="ghost" onClick={() => onToggle(false)} title="Back to the built-in default" data-testid={`${testId}-reset`}>
              Default
            </Button>
          )}
        </div>
      </Field>
    </div>
  );
}

function Editor({ scope, view, user }: { scope: string; view: RiskLimitsView; user: AdminUser | undefined }) {
  const client = useQueryClient();
  const isGlobal = scope === 'global';
  const initial = useMemo<Draft>(() => (isGlobal ? globalDraft(view.global) : userDraft(view.users[scope])), [isGlobal, scope, view]);
  const [draft, setDraft] = useState<Draft>(initial);
  const [errors, setErrors] = useState<Errors>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [clearing, setClearing] = useState(false);
  const who = isGlobal ? 'everyone' : (user?.email ?? scope);

  const save = useMutation({
    mutationFn: (body: object) => api.put<RiskLimitsView>('/admin/risk-limits', body),
    onSuccess: (answer) => {
      client.setQueryData(adminKeys.limits, answer);
      client.invalidateQueries({ queryKey: adminKeys.audit });
      client.invalidateQueries({ queryKey: qk.account });
      toast.success(`Risk limits of ${who} saved`);
      setClearing(false);
    },
    onError: (err) => {
      setClearing(false);
      if (err instanceof ValidationError) {
        const mapped = limitErrorsFromServer(err.fields, scope);
        setErrors(mapped.byLimit);
        setGeneral(mapped.general.length ? mapped.general.join('; ') : Object.keys(mapped.byLimit).length ? null : err.message);
      } else setGeneral(describeError(err));
    },
  });

  const set = (name: LimitName, value: string | null) => {
    setDraft((d) => ({ ...d, [name]: value }));
    setErrors((e) => ({ ...e, [name]: undefined }));
    setNote(null);
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const { changes, errors: found } = buildChanges(initial, draft);
    setErrors(found);
    setGeneral(null);
    if (Object.keys(found).length) return;
    if (Object.keys(changes).length === 0) {
      setNote('Nothing changed.');
      return;
    }
    save.mutate(limitsBody(scope, changes));
  };

  const hasOverrides = !isGlobal && Object.keys(view.users[scope] ?? {}).length > 0;
  return (
    <form onSubmit={onSubmit} noValidate className="space-y-3" data-testid="admin-limits-form">
      {general && (
        <p role="alert" className="text-danger" data-testid="admin-limits-error">
          {general}
        </p>
      )}
      <div className="grid gap-2 lg:grid-cols-2">
        {LIMITS.map((meta) => (
          <LimitRow
            key={meta.name}
            meta={meta}
            value={draft[meta.name]}
            reference={isGlobal ? view.defaults[meta.name] : view.global[meta.name]}
            referenceLabel={isGlobal ? 'default' : 'global'}
            scope={isGlobal ? 'global' : 'user'}
            error={errors[meta.name]}
            onChange={(v) => set(meta.name, v)}
            onToggle={(on) =>
              set(meta.name, on ? (initial[meta.name] ?? toText(isGlobal ? view.defaults[meta.name] : view.global[meta.name])) : null)
            }
          />
        ))}
      </div>
      <div className="sticky bottom-0 flex flex-wrap items-center justify-end gap-2 border-t border-line bg-app py-2">
        {note && (
          <span className="text-muted" data-testid="admin-limits-note">
            {note}
          </span>
        )}
        {hasOverrides && (
          <Button variant="ghost" onClick={() => setClearing(true)} data-testid="admin-limits-clear-user">
            Remove all overrides
          </Button>
        )}
        <Button onClick={() => setDraft(initial)} data-testid="admin-limits-revert">
          Revert
        </Button>
        <Button type="submit" variant="primary" disabled={save.isPending} data-testid="admin-limits-save">
          {save.isPending ? 'Saving…' : `Save limits of ${who}`}
        </Button>
      </div>
      <ConfirmDialog
        open={clearing}
        title={`Remove all overrides of ${who}?`}
        body="They then trade under the global limits."
        confirmLabel="Remove overrides"
        busy={save.isPending}
        onConfirm={() => save.mutate({ users: { [scope]: null } })}
        onCancel={() => setClearing(false)}
      />
    </form>
  );
}

export function LimitsTab() {
  const view = useRiskLimits();
  const users = useAdminUsers();
  const [scope, setScope] = useState('global');
  if (view.error) return <ErrorNote error={view.error} testId="admin-limits-load-error" />;
  if (!view.data) return <Empty>Loading…</Empty>;
  const overridden = new Set(Object.keys(view.data.users));
  const user = users.data?.items.find((u) => u.id === scope);
  return (
    <div className="space-y-3">
      <div className="flex flex-wrap items-center gap-2">
        <label htmlFor="admin-limits-scope" className="text-xs font-medium text-muted">
          Limits of
        </label>
        <select id="admin-limits-scope" className={SELECT} value={scope} onChange={(e) => setScope(e.target.value)} data-testid="admin-limits-scope">
          <option value="global">Everyone (global)</option>
          {users.data?.items.map((u) => (
            <option key={u.id} value={u.id}>
              {u.email}
              {overridden.has(u.id) ? ' (overrides)' : ''}
            </option>
          ))}
        </select>
      </div>
      {/* keyed on the scope and the data: a save or a switch starts from the server's values */}
      <Editor key={`${scope}:${view.dataUpdatedAt}`} scope={scope} view={view.data} user={user} />
    </div>
  );
}
