import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import type { Instrument } from '@/api/types';
import { useAuthStore } from '@/stores/auth';
import { useUiStore } from '@/stores/ui';
import { OrderTicket } from './OrderTicket';

const instrument: Instrument = {
  id: 1,
  exchange_segment: 'NSECM',
  exchange_instrument_id: 2885,
  symbol: 'RELIANCE',
  name: 'Reliance Industries',
  series: 'EQ',
  lot_size: 1,
  tick_size: '0.05',
  expiry: null,
  strike: null,
  option_type: null,
  freeze_quantity: null,
  active: true,
};

type Reply = { status: number; body: unknown; headers?: Record<string, string> };
let orderReplies: Reply[] = [];
let orderCalls: { body: Record<string, unknown>; key: string | null }[] = [];
let release: (() => void) | null = null;

function json(r: Reply) {
  return new Response(JSON.stringify(r.body), { status: r.status, headers: { 'Content-Type': 'application/json', ...r.headers } });
}

beforeEach(() => {
  orderReplies = [];
  orderCalls = [];
  useAuthStore.setState({ accessToken: 'a', refreshToken: 'r', accessExpiresAt: Date.now() + 600_000 });
  useUiStore.setState({ confirmOrders: false });
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      if (url.endsWith('/account')) return json({ status: 200, body: { trading_state: 'ACTIVE', state_reason: null } });
      if (url.endsWith('/orders/estimate')) return json({ status: 200, body: { required_margin: '579.22', available: '100000.00', sufficient: true, price: '2895.30' } });
      if (url.endsWith('/orders')) {
        orderCalls.push({ body: JSON.parse(String(init.body)), key: new Headers(init.headers).get('Idempotency-Key') });
        await new Promise<void>((r) => (release = r));
        return json(orderReplies.shift() ?? { status: 202, body: {} });
      }
      return json({ status: 404, body: { error: { code: 'not_found', message: 'nope' } } });
    }),
  );
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderTicket(onClose = vi.fn()) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <MemoryRouter>
        <OrderTicket instrument={instrument} side="BUY" onClose={onClose} />
      </MemoryRouter>
    </QueryClientProvider>,
  );
  return onClose;
}

const order = { id: 'o1', side: 'BUY', quantity: 1, symbol: 'RELIANCE', order_type: 'LIMIT', status: 'PENDING' };

describe('OrderTicket', () => {
  it('sends one order for a double click, with one client_order_id', async () => {
    const onClose = renderTicket();
    fireEvent.click(screen.getByTestId('ticket-type-LIMIT'));
    fireEvent.change(screen.getByTestId('ticket-price'), { target: { value: '2890.00' } });
    const send = screen.getByTestId('ticket-submit');
    fireEvent.click(send);
    fireEvent.click(send);
    await waitFor(() => expect(orderCalls).toHaveLength(1));
    expect(send).toBeDisabled();
    orderReplies.push({ status: 202, body: order });
    await act(async () => release?.());
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    expect(orderCalls).toHaveLength(1);
    expect(orderCalls[0].body).toMatchObject({ instrument_id: 1, side: 'BUY', quantity: 1, order_type: 'LIMIT', limit_price: '2890.00' });
    expect(orderCalls[0].body.client_order_id).toBe(orderCalls[0].key);
  });

  it('shows a field error from the client before sending', async () => {
    renderTicket();
    fireEvent.click(screen.getByTestId('ticket-type-LIMIT'));
    fireEvent.change(screen.getByTestId('ticket-price'), { target: { value: '2890.03' } });
    fireEvent.click(screen.getByTestId('ticket-submit'));
    expect(await screen.findByTestId('ticket-price-error')).toHaveTextContent('multiple of the tick size 0.05');
    expect(orderCalls).toHaveLength(0);
  });

  it("shows the API's 400 field error beside its field", async () => {
    renderTicket();
    orderReplies.push({ status: 400, body: { error: { code: 'validation_error', message: 'invalid order', details: { quantity: 'exceeds the freeze quantity 1800' } } } });
    fireEvent.click(screen.getByTestId('ticket-submit'));
    await waitFor(() => expect(orderCalls).toHaveLength(1));
    await act(async () => release?.());
    expect(await screen.findByTestId('ticket-quantity-error')).toHaveTextContent('exceeds the freeze quantity 1800');
  });

  it('shows a risk refusal with its rule and numbers, and a new client id for the next send', async () => {
    renderTicket();
    orderReplies.push({ status: 422, body: { error: { code: 'risk_rejected', message: 'order quantity 5 exceeds the limit 2', details: { rule: 'max_order_quantity', limit: 2, requested: 5 } } } });
    fireEvent.click(screen.getByTestId('ticket-submit'));
    await waitFor(() => expect(orderCalls).toHaveLength(1));
    await act(async () => release?.());
    const note = await screen.findByTestId('ticket-risk-error');
    expect(note).toHaveTextContent('max_order_quantity');
    expect(note).toHaveTextContent('Limit');
    expect(note).toHaveTextContent('5');
    fireEvent.click(screen.getByTestId('ticket-submit'));
    await waitFor(() => expect(orderCalls).toHaveLength(2));
    await act(async () => release?.());
    expect(orderCalls[1].key).not.toBe(orderCalls[0].key);
  });

  it('shows the halted banner on a 423 and disables sending', async () => {
    renderTicket();
    orderReplies.push({ status: 423, body: { error: { code: 'trading_halted', message: 'trading is halted: market turmoil', details: { rule: 'trading_halted' } } } });
    fireEvent.click(screen.getByTestId('ticket-submit'));
    await waitFor(() => expect(orderCalls).toHaveLength(1));
    await act(async () => release?.());
    expect(await screen.findByTestId('ticket-halted')).toHaveTextContent('market turmoil');
    expect(screen.getByTestId('ticket-submit')).toBeDisabled();
  });

  it('shows a 429 with its retry time and a 409 naming the first order', async () => {
    renderTicket();
    orderReplies.push({ status: 429, body: { error: { code: 'rate_limited', message: 'too many orders' } }, headers: { 'Retry-After': '7' } });
    fireEvent.click(screen.getByTestId('ticket-submit'));
    await waitFor(() => expect(orderCalls).toHaveLength(1));
    await act(async () => release?.());
    expect(await screen.findByTestId('ticket-rate-limited')).toHaveTextContent(/Retry in [67] s/);
    orderReplies.push({ status: 409, body: { error: { code: 'conflict', message: 'an identical order is still working', details: { duplicate_of: 'first-order-id' } } } });
    fireEvent.click(screen.getByTestId('ticket-submit'));
    await waitFor(() => expect(orderCalls).toHaveLength(2));
    await act(async () => release?.());
    expect(await screen.findByTestId('ticket-duplicate-link')).toHaveAttribute('href', '/orders?order=first-order-id');
  });

  it('asks for confirmation when it is on, and Enter sends', async () => {
    useUiStore.setState({ confirmOrders: true });
    renderTicket();
    fireEvent.submit(screen.getByTestId('ticket'));
    expect(await screen.findByTestId('ticket-confirm-text')).toHaveTextContent('BUY 1 RELIANCE MARKET at market MIS DAY');
    expect(orderCalls).toHaveLength(0);
    fireEvent.submit(screen.getByTestId('ticket'));
    await waitFor(() => expect(orderCalls).toHaveLength(1));
    await act(async () => release?.());
  });

  it('shows the estimated margin and available funds', async () => {
    renderTicket();
    await waitFor(() => expect(screen.getByTestId('ticket-margin-required')).toHaveTextContent('579.22'), { timeout: 2000 });
    expect(screen.getByTestId('ticket-available')).toHaveTextContent('1,00,000.00');
  });
});
