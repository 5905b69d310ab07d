/** Replace an account's secrets: a new secret key (with a new app key if that changed too) and/or
 * the market-data app's. */
import { useQueryClient } from '@tanstack/react-query';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { qk } from '@/api/queryClient';
import { Button, Dialog } from '@/components/ui';
import { CredentialInput } from './CredentialInput';
import type { BrokerAccount } from '@/api/types';
import { useSecretForm } from './useSecretForm';
import { checkReplace, type ReplaceBody } from './validate';

const FORM = 'accounts-replace';
const FIELDS = ['app_key', 'secret_key', 'md_app_key', 'md_secret_key'] as const;

function ReplaceForm({ account, onClose }: { account: BrokerAccount; onClose: () => void }) {
  const client = useQueryClient();
  const hasMdApp = Boolean(account.md_app_key_masked);
  const f = useSecretForm({
    check: (values) => checkReplace(values, hasMdApp),
    send: (body: ReplaceBody) => api.put<BrokerAccount>(`/broker-accounts/${account.id}`, body),
    fields: FIELDS,
    onSuccess: () => {
      toast.success('Secrets replaced');
      client.invalidateQueries({ queryKey: qk.brokerAccounts });
      onClose();
    },
  });
  return (
    <form ref={f.formRef} onSubmit={f.onSubmit} noValidate className="space-y-3 px-4 py-3">
      <p className="text-muted">
        Current app key {account.app_key_masked}
        {hasMdApp ? `, market-data app key ${account.md_app_key_masked}` : ''}. Leave an app key empty to keep it.
      </p>
      {f.general && (
        <p role="alert" className="text-danger" data-testid="accounts-replace-error">
          {f.general}
        </p>
      )}
      <CredentialInput form={FORM} name="app_key" label="New interactive app key (optional)" error={f.errors.app_key} />
      <CredentialInput form={FORM} name="secret_key" label="New interactive secret key" error={f.errors.secret_key} secret />
      <CredentialInput form={FORM} name="md_app_key" label={hasMdApp ? 'New market-data app key (optional)' : 'Market-data app key'} error={f.errors.md_app_key} />
      <CredentialInput form={FORM} name="md_secret_key" label="New market-data secret key" error={f.errors.md_secret_key} secret />
      <div className="flex justify-end gap-2 pt-1">
        <Button onClick={onClose} data-testid="accounts-replace-cancel">
          Cancel
        </Button>
        <Button type="submit" variant="primary" disabled={f.busy} data-testid="accounts-replace-submit">
          {f.busy ? 'Saving…' : 'Replace secrets'}
        </Button>
      </div>
    </form>
  );
}

export function ReplaceDialog({ account, onClose }: { account: BrokerAccount | null; onClose: () => void }) {
  return (
    <Dialog open={account !== null} onClose={onClose} title={`Replace secrets${account?.label ? ` of ${account.label}` : ''}`} testId="accounts-replace-dialog">
      {account && <ReplaceForm key={account.id} account={account} onClose={onClose} />}
    </Dialog>
  );
}
