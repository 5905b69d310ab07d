/** Session lifetime: the access token is refreshed before it expires (refreshDelay), and logout
 * revokes the tokens, closes the socket and forgets every cached answer. */
import { useEffect } from 'react';
import { api, refreshAccessToken, setSessionEndHandler } from '@/api/client';
import { queryClient } from '@/api/queryClient';
import { useAuthStore } from '@/stores/auth';
import { useQuoteStore } from '@/stores/quotes';
import { live } from '@/features/live';
import { refreshDelay } from './refresh';

export { refreshDelay };

const MAX_TIMER = 2 ** 31 - 1;

function forget(reason: string | null): void {
  live.stop();
  useAuthStore.getState().clear(reason);
  useQuoteStore.getState().reset();
  queryClient.clear();
}

setSessionEndHandler((reason) => forget(reason));

/** Log out: revoke on the server (best effort), then forget locally. */
export async function logout(): Promise<void> {
  const { accessToken } = useAuthStore.getState();
  if (accessToken) {
    try {
      await api.post('/auth/logout');
    } catch {
      /* the local session ends anyway */
    }
  }
  forget(null);
}

/** Keeps the access token fresh while logged in (a timer per token; retried on network errors). */
export function useTokenRefresh(): void {
  const expiresAt = useAuthStore((s) => s.accessExpiresAt);
  const issuedAt = useAuthStore((s) => s.accessIssuedAt);
  useEffect(() => {
    if (!expiresAt) return;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const schedule = (ms: number) => {
      timer = setTimeout(run, Math.min(ms, MAX_TIMER));
    };
    const run = () => {
      const wait = refreshDelay(expiresAt, issuedAt, Date.now());
      if (wait > 0) return schedule(wait); // a long-lived token: timers cap at ~24.8 days
      refreshAccessToken().catch((err) => {
        if ((err as { status?: number }).status === 401) return; // the session ended
        schedule(10_000); // network trouble: try again
      });
    };
    schedule(refreshDelay(expiresAt, issuedAt, Date.now()));
    return () => {
      if (timer) clearTimeout(timer);
    };
  }, [expiresAt, issuedAt]);
}
