/** Link an XTS account: app key and secret (required), client id, the market-data app's key and
 * secret (optional, together), a label. */
import { useQueryClient } from '@tanstack/react-query';
import { toast } from 'sonner';
import { api } from '@/api/client';
import { qk } from '@/api/queryClient';
import { Button, Field, Input } from '@/components/ui';
import { CredentialInput } from './CredentialInput';
import type { BrokerAccount } from '@/api/types';
import { useSecretForm } from './useSecretForm';
import { checkLink, type LinkBody } from './validate';

const FORM = 'accounts-link';
const FIELDS = ['label', 'app_key', 'secret_key', 'client_id', 'md_app_key', 'md_secret_key'] as const;

export function LinkForm() {
  const client = useQueryClient();
  const f = useSecretForm({
    check: checkLink,
    send: (body: LinkBody) => api.post<BrokerAccount>('/broker-accounts', body),
    fields: FIELDS,
    onSuccess: (account) => {
      toast.success(`XTS account ${account.app_key_masked} linked`);
      client.invalidateQueries({ queryKey: qk.brokerAccounts });
    },
  });
  return (
    <form ref={f.formRef} onSubmit={f.onSubmit} noValidate className="space-y-3 rounded border border-line bg-surface p-3" data-testid="accounts-link-form" aria-labelledby="accounts-link-title">
      <h2 id="accounts-link-title" className="text-sm font-semibold">
        Link an XTS account
      </h2>
      {f.general && (
        <p role="alert" className="text-sm text-danger" data-testid="accounts-link-error">
          {f.general}
        </p>
      )}
      <div className="grid gap-3 sm:grid-cols-2">
        <Field label="Label (optional)" htmlFor={`${FORM}-label`} error={f.errors.label} testId={`${FORM}-label`}>
          <Input id={`${FORM}-label`} name="label" maxLength={64} autoComplete="off" aria-invalid={f.errors.label ? true : undefined} data-testid={`${FORM}-label`} />
        </Field>
        <CredentialInput form={FORM} name="client_id" label="Client id (optional)" error={f.errors.client_id} />
        <CredentialInput form={FORM} name="app_key" label="Interactive app key" error={f.errors.app_key} required />
        <CredentialInput form={FORM} name="secret_key" label="Interactive secret key" error={f.errors.secret_key} secret required hint="Stored encrypted; never shown again." />
        <CredentialInput form={FORM} name="md_app_key" label="Market-data app key (optional)" error={f.errors.md_app_key} />
        <CredentialInput form={FORM} name="md_secret_key" label="Market-data secret key (optional)" error={f.errors.md_secret_key} secret />
      </div>
      <div className="flex justify-end">
        <Button type="submit" variant="primary" disabled={f.busy} data-testid="accounts-link-submit">
          {f.busy ? 'Linking…' : 'Link account'}
        </Button>
      </div>
    </form>
  );
}
