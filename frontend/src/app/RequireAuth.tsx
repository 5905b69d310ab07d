import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';
import { isLoggedIn, useAuthStore } from '@/stores/auth';

/** Sends a visitor without a session to /login, remembering where they were going. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const loggedIn = useAuthStore(isLoggedIn);
  const location = useLocation();
  if (!loggedIn) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

/** Admin-only pages: anyone else is sent home, the address replaced with `/` (the API refuses them
 * anyway). Until the user's role is known (/auth/me after a login) nothing of the page renders, so
 * a trader never sees it, nor fires its requests, on the way home. */
export function RequireAdmin({ children }: { children: ReactNode }) {
  const role = useAuthStore((s) => s.user?.role);
  if (!role) return <p role="status" className="p-4 text-muted">Checking access…</p>;
  if (role !== 'admin') return <Navigate to="/" replace />;
  return <>{children}</>;
}
