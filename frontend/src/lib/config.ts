/** Build-time endpoints. Empty API base = the page's own origin; the WebSocket URL falls back to
 * /api/v1/meta's websocket_url, then ws(s)://<page host>:<meta.websocket_port>/ws (see wsUrl). */

const env = import.meta.env;

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export const API_BASE: string = trimSlash(env.VITE_API_URL || env.REACT_APP_API_URL || '');
export const BUILD_WS_URL: string = env.VITE_WEBSOCKET_URL || env.REACT_APP_WEBSOCKET_URL || '';

export interface WsLocation {
  protocol: string; // 'https:' | 'http:'
  hostname: string;
  host: string; // hostname[:port]
}

/** The socket's URL: the build-time one, else the server's advertised one, else the page host on
 * the server's WebSocket port. A URL given as a path ("/ws") is on the page's own host. */
export function websocketUrl(
  meta: { websocket_url?: string | null; websocket_port?: number | null } | undefined,
  loc: WsLocation = window.location,
  buildUrl: string = BUILD_WS_URL,
): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  // a path ("/ws", behind a proxy on the page's origin) is taken on the page's host
  const absolute = (url: string) => (url.startsWith('/') ? `${scheme}//${loc.host}${url}` : url);
  if (buildUrl) return absolute(buildUrl);
  if (meta?.websocket_url) return absolute(meta.websocket_url);
  const port = meta?.websocket_port ? `:${meta.websocket_port}` : '';
  const host = loc.hostname.includes(':') ? `[${loc.hostname}]` : loc.hostname;
  return `${scheme}//${host}${port}/ws`;
}
