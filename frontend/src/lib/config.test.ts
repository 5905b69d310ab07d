import { describe, expect, it } from 'vitest';
import { websocketUrl } from './config';

const http = { protocol: 'http:', hostname: 'trader.local', host: 'trader.local:5000' };
const https = { protocol: 'https:', hostname: 'trade.example', host: 'trade.example' };

describe('websocketUrl', () => {
  it('uses the page host on the server\'s WebSocket port by default', () => {
    expect(websocketUrl({ websocket_url: null, websocket_port: 8081 }, http, '')).toBe('ws://trader.local:8081/ws');
    expect(websocketUrl({ websocket_url: null, websocket_port: 8081 }, https, '')).toBe('wss://trade.example:8081/ws');
  });
  it("prefers the server's advertised URL, then the build-time one", () => {
    expect(websocketUrl({ websocket_url: 'wss://feed.example/ws', websocket_port: 8081 }, https, '')).toBe('wss://feed.example/ws');
    expect(websocketUrl({ websocket_url: 'wss://feed.example/ws', websocket_port: 8081 }, https, 'wss://built/ws')).toBe('wss://built/ws');
  });
  it('takes a path on the page host (nginx proxying /ws)', () => {
    expect(websocketUrl({ websocket_url: '/ws', websocket_port: 8081 }, https, '')).toBe('wss://trade.example/ws');
    expect(websocketUrl(undefined, http, '/ws')).toBe('ws://trader.local:5000/ws');
  });
  it('brackets an IPv6 page host', () => {
    expect(websocketUrl({ websocket_url: null, websocket_port: 8081 }, { protocol: 'http:', hostname: '::1', host: '[::1]:5000' }, '')).toBe('ws://[::1]:8081/ws');
  });
});
