import { useState, type FormEvent } from 'react';
import { Link, Navigate, useNavigate } from 'react-router';
import { api } from '@/api/client';
import { ApiError, ValidationError } from '@/api/errors';
import { useMeta } from '@/api/queries';
import { Button, Field, Input } from '@/components/ui';
import { AuthCard, signIn } from './LoginPage';

export default function RegisterPage() {
  const navigate = useNavigate();
  const meta = useMeta();
  const [form, setForm] = useState({ name: '', email: '', password: '' });
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  if (meta.data && !meta.data.registration_open) return <Navigate to="/login" replace />;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFields({});
    try {
      await api.post('/auth/register', { ...form, email: form.email.trim() }, { anonymous: true });
      await signIn(form.email.trim(), form.password);
      navigate('/', { replace: true });
    } catch (err) {
      if (err instanceof ValidationError) setFields(err.fields);
      if (err instanceof ApiError) setError(err.message);
      else setError('Registration failed.');
    } finally {
      setBusy(false);
    }
  }

  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [k]: e.target.value });
  return (
    <AuthCard title="Create an account">
      <form onSubmit={submit} className="space-y-3" data-testid="register-form">
        <Field label="Name" htmlFor="reg-name" error={fields.name}>
          <Input id="reg-name" data-testid="register-name" value={form.name} onChange={set('name')} autoComplete="name" />
        </Field>
        <Field label="Email" htmlFor="reg-email" error={fields.email}>
          <Input id="reg-email" data-testid="register-email" type="email" required value={form.email} onChange={set('email')} autoComplete="username" />
        </Field>
        <Field label="Password (10+ characters)" htmlFor="reg-password" error={fields.password}>
          <Input id="reg-password" data-testid="register-password" type="password" required minLength={10} value={form.password} onChange={set('password')} autoComplete="new-password" />
        </Field>
        {error && !Object.keys(fields).length && (
          <p role="alert" data-testid="register-error" className="text-danger">
            {error}
          </p>
        )}
        <Button type="submit" variant="primary" className="w-full" disabled={busy} data-testid="register-submit">
          {busy ? 'Creating…' : 'Create account'}
        </Button>
      </form>
      <p className="mt-4 text-center text-muted">
        Have an account?{' '}
        <Link to="/login" className="text-accent underline">
          Log in
        </Link>
      </p>
    </AuthCard>
  );
}
