import { useState, type FormEvent } from 'react';
import { Link, useLocation, useNavigate } from 'react-router';
import { api } from '@/api/client';
import { ApiError, RateLimitedError, ValidationError } from '@/api/errors';
import { useMeta } from '@/api/queries';
import { qk, queryClient } from '@/api/queryClient';
import { warmStart } from '@/features/watchlist/warm';
import type { Tokens, User } from '@/api/types';
import { useAuthStore } from '@/stores/auth';
import { Button, Field, Input } from '@/components/ui';

/** Log in. The first live price is what the trader waits for, so everything it needs starts with
 * the login answer, in parallel, before the terminal renders: the socket connects (and
 * authenticates), /auth/me and the watchlists are read, the watchlist's quotes are subscribed as
 * soon as its ids are known and a REST snapshot of them is drawn if it beats the socket. */
export async function signIn(email: string, password: string): Promise<void> {
  const tokens = await api.post<Tokens>('/auth/login', { email, password }, { anonymous: true });
  useAuthStore.getState().setTokens(tokens);
  warmStart();
  void queryClient.prefetchQuery({ queryKey: qk.me, queryFn: () => api.get<User>('/auth/me') });
}

export function AuthCard({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <main className="flex min-h-full items-center justify-center p-4">
      <div className="w-full max-w-sm rounded-lg border border-line bg-surface p-6 shadow-sm">
        <div className="mb-4 flex items-center gap-2">
          <img src="/favicon.svg" alt="" className="h-6 w-6" />
          <h1 className="text-lg font-semibold">{title}</h1>
        </div>
        {children}
      </div>
    </main>
  );
}

export default function LoginPage() {
  const navigate = useNavigate();
  const location = useLocation();
  const endReason = useAuthStore((s) => s.endReason);
  const meta = useMeta();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email.trim(), password);
      const from = (location.state as { from?: string } | null)?.from;
      navigate(from && from !== '/login' ? from : '/', { replace: true });
    } catch (err) {
      if (err instanceof RateLimitedError) {
        setError(`Too many attempts. Try again in ${err.retryAfter ?? 'a few'} s.`);
      } else if (err instanceof ValidationError) {
        setError(Object.values(err.fields)[0] ?? err.message);
      } else if (err instanceof ApiError) {
        setError(err.status === 401 ? 'Wrong email or password.' : err.message);
      } else setError('Login failed.');
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthCard title="Log in to the terminal">
      {endReason && (
        <p role="status" data-testid="login-reason" className="mb-3 rounded border border-warn/40 bg-warn/10 p-2 text-warn">
          {endReason}
        </p>
      )}
      <form onSubmit={submit} className="space-y-3" data-testid="login-form">
        <Field label="Email" htmlFor="login-email">
          <Input id="login-email" data-testid="login-email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        </Field>
        <Field label="Password" htmlFor="login-password">
          <Input id="login-password" data-testid="login-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        {error && (
          <p role="alert" data-testid="login-error" className="text-danger">
            {error}
          </p>
        )}
        <Button type="submit" variant="primary" className="w-full" disabled={busy} data-testid="login-submit">
          {busy ? 'Logging in…' : 'Log in'}
        </Button>
      </form>
      {meta.data?.registration_open && (
        <p className="mt-4 text-center text-muted">
          New here?{' '}
          <Link to="/register" className="text-accent underline" data-testid="login-register-link">
            Create an account
          </Link>
        </p>
      )}
    </AuthCard>
  );
}
