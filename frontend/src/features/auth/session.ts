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
    let retry: ReturnType<typeof setTimeout> | null = null;
    const run = () => {
      refreshAccessToken().catch((err) => {
        if ((err as { status?: number }).status === 401) return; // session ended
        retry = setTimeout(run, 10_000);
      });
    };
    const timer = setTimeout(run, refreshDelay(expiresAt, issuedAt, Date.now()));
    return () => {
      clearTimeout(timer);
      if (retry) clearTimeout(retry);
    };
  }, [expiresAt, issuedAt]);
}
