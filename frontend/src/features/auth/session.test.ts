import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanup, renderHook } from '@testing-library/react';
import { useAuthStore } from '@/stores/auth';
import { useTokenRefresh } from './session';

describe('useTokenRefresh', () => {
  let calls: { url: string; auth: string | null }[];
  let reply: { status: number; body: unknown };

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    calls = [];
    reply = { status: 200, body: { access_token: 'access-2', expires_in: 100 } };
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit) => {
        calls.push({ url, auth: new Headers(init.headers).get('Authorization') });
        return new Response(JSON.stringify(reply.body), { status: reply.status, headers: { 'Content-Type': 'application/json' } });
      }),
    );
    useAuthStore.getState().clear();
    useAuthStore.getState().setTokens({ access_token: 'access-1', refresh_token: 'refresh-1', expires_in: 100 }, Date.now());
  });
  afterEach(() => {
    cleanup();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('refreshes with the refresh token a fifth of the lifetime before expiry, then again for the new token', async () => {
    const { unmount } = renderHook(() => useTokenRefresh());
    await vi.advanceTimersByTimeAsync(79_000);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toEqual([{ url: '/api/v1/auth/refresh', auth: 'Bearer refresh-1' }]);
    expect(useAuthStore.getState().accessToken).toBe('access-2');
    expect(useAuthStore.getState().refreshToken).toBe('refresh-1');
    await vi.advanceTimersByTimeAsync(80_000);
    expect(calls).toHaveLength(2);
    unmount();
  });

  it('ends the session with a reason when the refresh is refused', async () => {
    reply = { status: 401, body: { error: { code: 'unauthorized', message: 'token revoked' } } };
    renderHook(() => useTokenRefresh());
    await vi.advanceTimersByTimeAsync(80_000);
    const s = useAuthStore.getState();
    expect(s.accessToken).toBeNull();
    expect(s.endReason).toMatch(/session has ended/);
  });

  it('retries after a network failure instead of giving up', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('offline'))));
    renderHook(() => useTokenRefresh());
    await vi.advanceTimersByTimeAsync(80_000);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(useAuthStore.getState().accessToken).toBe('access-1');
  });
});
