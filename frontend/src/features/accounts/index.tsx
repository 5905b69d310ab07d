/** Broker accounts page (/accounts): the caller's linked XTS account (app keys masked by the
 * server, secrets never returned), link one, replace its secrets, unlink it (confirmed). Secret
 * inputs are write-only: password inputs, uncontrolled, emptied after every submit, never in React
 * state or the query cache (useSecretForm). A 400's field errors show beside their fields.
 *
 * data-testid: accounts-page, accounts-list, accounts-empty, accounts-error,
 * accounts-row-<accountId> (cells: accounts-label, accounts-broker, accounts-app-key,
 * accounts-client-id, accounts-md-app-key, accounts-secret-status, accounts-updated; buttons
 * accounts-replace, accounts-unlink), accounts-link-form, accounts-link-{label,client-id,app-key,
 * secret-key,md-app-key,md-secret-key} (each error: <id>-error), accounts-link-submit,
 * accounts-link-error, accounts-linked-note, accounts-replace-dialog,
 * accounts-replace-{app-key,secret-key,md-app-key,md-secret-key} (errors <id>-error),
 * accounts-replace-submit, accounts-replace-cancel, accounts-replace-error, accounts-unlink-error;
 * unlink confirmation: confirm, confirm-ok, confirm-cancel. */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { qk } from '@/api/queryClient';
import { Badge, Button, ConfirmDialog, Empty, ErrorNote } from '@/components/ui';
import { describeError } from '@/features/positions/describeError';
import { formatDateTime, MISSING } from '@/lib/format';
import { LinkForm } from './LinkForm';
import { ReplaceDialog } from './ReplaceDialog';
import type { BrokerAccount } from '@/api/types';
import type { AccountList } from './types';

function Item({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div>
      <dt className="text-xs text-muted">{label}</dt>
      <dd className="font-mono text-sm" data-testid={testId}>
        {value}
      </dd>
    </div>
  );
}

function AccountCard({ account, onReplace, onUnlink }: { account: BrokerAccount; onReplace: () => void; onUnlink: () => void }) {
  return (
    <li className="rounded border border-line bg-surface p-3" data-testid={`accounts-row-${account.id}`}>
      <div className="mb-2 flex flex-wrap items-center justify-between gap-2">
        <div className="flex items-center gap-2">
          <span className="font-semibold" data-testid="accounts-label">
            {account.label || 'XTS account'}
          </span>
          <Badge tone="accent" data-testid="accounts-broker">
            {account.broker.toUpperCase()}
          </Badge>
        </div>
        <div className="flex gap-2">
          <Button size="sm" onClick={onReplace} data-testid="accounts-replace">
            Replace secrets
          </Button>
          <Button size="sm" variant="danger" onClick={onUnlink} data-testid="accounts-unlink">
            Unlink
          </Button>
        </div>
      </div>
      <dl className="grid grid-cols-2 gap-3 sm:grid-cols-4">
        <Item label="App key" value={account.app_key_masked} testId="accounts-app-key" />
        <Item label="Client id" value={account.client_id || MISSING} testId="accounts-client-id" />
        <Item label="Market-data app key" value={account.md_app_key_masked ?? MISSING} testId="accounts-md-app-key" />
        <div>
          <dt className="text-xs text-muted">Secrets</dt>
          <dd className="text-sm" data-testid="accounts-secret-status">
            {account.has_secret ? 'stored (encrypted)' : 'missing'}
            {account.md_app_key_masked ? (account.has_md_secret ? ', market data stored' : ', market data missing') : ''}
          </dd>
        </div>
      </dl>
      <p className="mt-2 text-xs text-muted" data-testid="accounts-updated">
        Linked {formatDateTime(account.created_at)}; updated {formatDateTime(account.updated_at)}
      </p>
    </li>
  );
}

export default function AccountsPage() {
  const client = useQueryClient();
  const list = useQuery({ queryKey: qk.brokerAccounts, queryFn: () => api.get<AccountList>('/broker-accounts') });
  const [replacing, setReplacing] = useState<BrokerAccount | null>(null);
  const [unlinking, setUnlinking] = useState<BrokerAccount | null>(null);
  const unlink = useMutation({
    mutationFn: (account: BrokerAccount) => api.del<BrokerAccount>(`/broker-accounts/${account.id}`),
    onSuccess: (account) => {
      toast.success(`XTS account ${account.app_key_masked} unlinked`);
      client.invalidateQueries({ queryKey: qk.brokerAccounts });
      setUnlinking(null);
    },
  });
  const accounts = list.data?.items ?? [];
  const hasXts = accounts.some((a) => a.broker === 'xts');

  return (
    <section className="flex max-w-4xl flex-col gap-3 p-3 md:p-4" data-testid="accounts-page">
      <h1 className="text-base font-semibold">Broker accounts</h1>
      <p className="text-muted">
        Your orders go through the XTS account you link here; without one they use the server&apos;s default account. Secrets are stored encrypted and are never
        shown again: to change one, replace it.
      </p>
      {list.error ? (
        <ErrorNote error={list.error} testId="accounts-error" />
      ) : list.isPending ? (
        <Empty>Loading…</Empty>
      ) : accounts.length === 0 ? (
        <Empty testId="accounts-empty">No broker account linked.</Empty>
      ) : (
        <ul className="space-y-2" data-testid="accounts-list">
          {accounts.map((a) => (
            <AccountCard
              key={a.id}
              account={a}
              onReplace={() => setReplacing(a)}
              onUnlink={() => {
                unlink.reset();
                setUnlinking(a);
              }}
            />
          ))}
        </ul>
      )}
      {list.isSuccess &&
        (hasXts ? (
          <p className="text-xs text-muted" data-testid="accounts-linked-note">
            One XTS account can be linked at a time: replace its secrets, or unlink it to link another.
          </p>
        ) : (
          <LinkForm />
        ))}
      <ReplaceDialog account={replacing} onClose={() => setReplacing(null)} />
      <ConfirmDialog
        open={unlinking !== null}
        title={`Unlink ${unlinking?.label || 'the XTS account'} (${unlinking?.app_key_masked ?? ''})?`}
        body={
          <div className="space-y-2">
            <p>Its secrets are erased at once; your orders then go through the server&apos;s default account.</p>
            {unlink.error && (
              <p role="alert" className="text-danger" data-testid="accounts-unlink-error">
                {describeError(unlink.error)}
              </p>
            )}
          </div>
        }
        confirmLabel="Unlink"
        busy={unlink.isPending}
        onConfirm={() => unlinking && unlink.mutate(unlinking)}
        onCancel={() => setUnlinking(null)}
      />
    </section>
  );
}
