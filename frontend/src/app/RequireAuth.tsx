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

/** Admin-only pages: others are sent home (the API refuses them anyway). */
export function RequireAdmin({ children }: { children: ReactNode }) {
  const role = useAuthStore((s) => s.user?.role);
  if (role && role !== 'admin') return <Navigate to="/" replace />;
  return <>{children}</>;
}
