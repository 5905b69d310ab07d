import { Field, Input } from '@/components/ui';

/** One credential input beside its error. Secrets are password inputs the browser must not save
 * or fill (autoComplete new-password), uncontrolled so their text never enters React state. */
export function CredentialInput({
  form,
  name,
  label,
  error,
  secret,
  hint,
  required,
}: {
  form: string;
  name: string;
  label: string;
  error?: string;
  secret?: boolean;
  hint?: string;
  required?: boolean;
}) {
  const id = `${form}-${name}`;
  const testId = `${form}-${name.replace(/_/g, '-')}`;
  return (
    <Field label={label} htmlFor={id} error={error} hint={hint} testId={testId}>
      <Input
        id={id}
        name={name}
        type={secret ? 'password' : 'text'}
        autoComplete={secret ? 'new-password' : 'off'}
        spellCheck={false}
        autoCapitalize="off"
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        aria-required={required || undefined}
        data-testid={testId}
      />
    </Field>
  );
}
