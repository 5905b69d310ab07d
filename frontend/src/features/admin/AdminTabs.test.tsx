import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useAuthStore } from '@/stores/auth';
import { KillSwitchTab } from './KillSwitchTab';
import { LimitsTab } from './LimitsTab';

const LIMITS = {
  max_order_quantity: 100000,
  max_order_notional: '50000000',
  max_position_quantity: 1000000,
  max_open_orders: 1000,
  orders_per_second: 50,
  order_burst: 100,
  max_daily_loss: '1000000',
  max_orders_per_day: 100000,
  allowed_products: ['MIS', 'NRML', 'CNC'],
  allowed_segments: ['NSECM'],
  margin_cnc_percent: '100',
  margin_nrml_percent: '25',
  margin_mis_percent: '20',
};
const USERS = { items: [{ id: 'u-1', email: 'trader@x.in', name: 'T', role: 'trader', active: true, created_at: '2026-03-05T04:00:00Z' }] };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
let writes: Response[];
const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
  const path = new URL(String(input), 'http://localhost').pathname;
  const method = init?.method ?? 'GET';
  if (method !== 'GET') return writes.shift() ?? json(500, {});
  if (path.endsWith('/admin/risk-limits')) return json(200, { defaults: LIMITS, global: LIMITS, users: {} });
  if (path.endsWith('/admin/users')) return json(200, USERS);
  if (path.endsWith('/admin/kill-switch')) return json(200, { global: { trading_state: 'ACTIVE', reason: null }, users: [] });
  return json(404, {});
});
const sent = () => fetchMock.mock.calls.filter(([, i]) => i?.method && i.method !== 'GET').map(([u, i]) => [new URL(String(u), 'http://localhost').pathname, i?.method, JSON.parse(String(i?.body))]);

function show(node: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  render(<QueryClientProvider client={client}>{node}</QueryClientProvider>);
}

beforeEach(() => {
  writes = [];
  fetchMock.mockClear();
  vi.stubGlobal('fetch', fetchMock);
  useAuthStore.setState({ accessToken: 'a', refreshToken: 'r', user: { id: 'admin-1', email: 'admin@x.in', name: 'A', role: 'admin' } });
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  useAuthStore.getState().clear();
});

describe('LimitsTab', () => {
  it('keeps a bad value beside its field and sends nothing', async () => {
    show(<LimitsTab />);
    await userEvent.clear(await screen.findByTestId('admin-limits-order-burst'));
    await userEvent.type(screen.getByTestId('admin-limits-order-burst'), '1.5');
    await userEvent.click(screen.getByTestId('admin-limits-save'));
    expect(screen.getByTestId('admin-limits-order-burst-error')).toHaveTextContent('must be a whole number');
    expect(sent()).toEqual([]);
  });

  it('sends only the change and shows the server\'s field error beside its field', async () => {
    writes.push(json(400, { error: { code: 'validation_error', message: 'invalid risk limits; nothing was changed', details: { 'global.max_daily_loss': 'must be greater than 0 and at most 1000000000000000' } } }));
    show(<LimitsTab />);
    await userEvent.clear(await screen.findByTestId('admin-limits-max-daily-loss'));
    await userEvent.type(screen.getByTestId('admin-limits-max-daily-loss'), '5,00,000');
    await userEvent.click(screen.getByTestId('admin-limits-save'));
    expect(await screen.findByTestId('admin-limits-max-daily-loss-error')).toHaveTextContent('must be greater than 0');
    expect(sent()).toEqual([['/api/v1/admin/risk-limits', 'PUT', { global: { max_daily_loss: '500000' } }]]);
  });
});

describe('KillSwitchTab', () => {
  it('requires a reason, then confirms naming the effect before halting', async () => {
    writes.push(json(200, { user_id: null, trading_state: 'HALTED', previous: 'ACTIVE', reason: 'admin: drill' }));
    show(<KillSwitchTab />);
    await screen.findByTestId('admin-kill-global-state');
    await userEvent.click(screen.getByTestId('admin-kill-state-HALTED'));
    await userEvent.click(screen.getByTestId('admin-kill-apply'));
    expect(screen.getByTestId('admin-kill-reason-error')).toHaveTextContent('a reason is required');
    expect(screen.queryByTestId('confirm')).not.toBeInTheDocument();

    await userEvent.type(screen.getByTestId('admin-kill-reason'), 'drill');
    await userEvent.click(screen.getByTestId('admin-kill-apply'));
    expect(screen.getByTestId('confirm')).toHaveTextContent('Halt trading for everyone?');
    expect(screen.getByTestId('confirm')).toHaveTextContent('new orders and modifications that add exposure are refused');
    expect(sent()).toEqual([]);
    await userEvent.click(screen.getByTestId('confirm-ok'));
    await vi.waitFor(() => expect(sent()).toEqual([['/api/v1/admin/kill-switch', 'POST', { state: 'HALTED', reason: 'drill' }]]));
  });
});
