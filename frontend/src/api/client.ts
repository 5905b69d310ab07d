/** The one way to call the REST API: `api.get/post/patch/put/del(path, ...)`. Attaches the access
 * token, refreshes it once on a 401 and retries, and turns every error answer into a typed ApiError
 * (src/api/errors.ts). Paths are relative to /api/v1: api.get<Order>('/orders/123'). */
import { API_BASE } from '@/lib/config';
import { useAuthStore } from '@/stores/auth';
import { NetworkError, toApiError, UnauthorizedError, type ErrorBody } from './errors';
import type { Tokens } from './types';

export const API_PREFIX = `${API_BASE}/api/v1`;

type Query = Record<string, string | number | boolean | null | undefined | (string | number)[]>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** no bearer token and no refresh (login, register, meta) */
  anonymous?: boolean;
}

export function buildUrl(path: string, query?: Query): string {
  const url = `${API_PREFIX}${path.startsWith('/') ? path : `/${path}`}`;
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    params.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const qs = params.toString();
  return qs ? `${url}?${qs}` : url;
}

async function readJson(res: Response): Promise<unknown> {
  if (res.status === 204) return undefined;
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function send(method: string, path: string, opts: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(buildUrl(path, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error)?.name === 'AbortError') throw err;
    throw new NetworkError('the server could not be reached');
  }
}

let refreshing: Promise<string> | null = null;

/** A new access token from the refresh token; concurrent callers share one request. A refused
 * refresh ends the session (the login page shows why). */
export function refreshAccessToken(): Promise<string> {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const { refreshToken } = useAuthStore.getState();
    if (!refreshToken) throw new UnauthorizedError(401, 'unauthorized', 'not logged in');
    const res = await send('POST', '/auth/refresh', {}, refreshToken);
    const body = await readJson(res);
    if (!res.ok) {
      const err = toApiError(res.status, body as ErrorBody, res.headers.get('Retry-After'));
      if (res.status === 401 || res.status === 403 || res.status === 422) {
        endSession('Your session has ended (signed out elsewhere, expired or revoked). Please log in again.');
      }
      throw err;
    }
    const tokens = body as Pick<Tokens, 'access_token' | 'expires_in'> & { refresh_token?: string };
    useAuthStore.getState().setTokens(tokens);
    return tokens.access_token;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

type SessionEndHandler = (reason: string) => void;
let onSessionEnd: SessionEndHandler = (reason) => useAuthStore.getState().clear(reason);
/** The auth feature installs the full logout (clear caches, close socket) here. */
export function setSessionEndHandler(handler: SessionEndHandler): void {
  onSessionEnd = handler;
}
export function endSession(reason: string): void {
  onSessionEnd(reason);
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const token = opts.anonymous ? null : useAuthStore.getState().accessToken;
  let res = await send(method, path, opts, token);
  if (res.status === 401 && !opts.anonymous && useAuthStore.getState().refreshToken) {
    res = await send(method, path, opts, await refreshAccessToken());
  }
  const body = await readJson(res);
  if (!res.ok) {
    const err = toApiError(res.status, body as ErrorBody, res.headers.get('Retry-After'));
    if (res.status === 401 && !opts.anonymous) endSession('Your session has ended. Please log in again.');
    throw err;
  }
  return body as T;
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, body }),
  patch: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PATCH', path, { ...opts, body }),
  put: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('PUT', path, { ...opts, body }),
  del: <T>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, opts),
};
