/** The session: tokens and the user, persisted in localStorage so a reload keeps the trader
 * logged in. `endReason` carries why a session ended (shown on the login page). */
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import type { User } from '@/api/types';

export interface AuthState {
  accessToken: string | null;
  refreshToken: string | null;
  /** epoch ms when the access token expires */
  accessExpiresAt: number | null;
  /** epoch ms when the access token was issued (its lifetime decides the refresh margin) */
  accessIssuedAt: number | null;
  user: User | null;
  endReason: string | null;
  setTokens: (t: { access_token: string; refresh_token?: string; expires_in: number }, now?: number) => void;
  setUser: (user: User) => void;
  /** Forget the session; `reason` is shown on the login page. */
  clear: (reason?: string | null) => void;
  clearReason: () => void;
}

export const useAuthStore = create<AuthState>()(
  persist(
    (set) => ({
      accessToken: null,
      refreshToken: null,
      accessExpiresAt: null,
      accessIssuedAt: null,
      user: null,
      endReason: null,
      setTokens: (t, now = Date.now()) =>
        set((s) => ({
          accessToken: t.access_token,
          refreshToken: t.refresh_token ?? s.refreshToken,
          accessIssuedAt: now,
          accessExpiresAt: now + t.expires_in * 1000,
          endReason: null,
        })),
      setUser: (user) => set({ user }),
      clear: (reason = null) =>
        set({
          accessToken: null,
          refreshToken: null,
          accessExpiresAt: null,
          accessIssuedAt: null,
          user: null,
          endReason: reason,
        }),
      clearReason: () => set({ endReason: null }),
    }),
    { name: 'tradingapp.auth', version: 1 },
  ),
);

export const isLoggedIn = (s: Pick<AuthState, 'accessToken' | 'refreshToken'>) => Boolean(s.accessToken && s.refreshToken);
