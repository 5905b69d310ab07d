import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { act, cleanup, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useQuoteStore } from '@/stores/quotes';
import PositionsPage from './index';

const NET = {
  items: [
    { instrument_id: 1, symbol: 'RELIANCE', product: 'MIS', quantity: 10, average_price: '100.00', last_price: '101.00', realized_pnl: '0', unrealized_pnl: '10' },
    { instrument_id: 2, symbol: 'TCS', product: 'NRML', quantity: -4, average_price: '50.00', last_price: '49.00', realized_pnl: '2.5', unrealized_pnl: '4' },
  ],
};
const INSTRUMENT = (id: number) => ({ id, symbol: id === 1 ? 'RELIANCE' : 'TCS', tick_size: '0.05', lot_size: 1, exchange_segment: 'NSECM' });

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

let orderAnswers: Response[];
const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
  const url = new URL(String(input), 'http://localhost');
  const method = init?.method ?? 'GET';
  if (method === 'GET' && url.pathname.endsWith('/positions')) return json(200, url.searchParams.get('view') === 'day' ? { items: [] } : NET);
  if (method === 'GET' && url.pathname.includes('/instruments/')) return json(200, INSTRUMENT(Number(url.pathname.split('/').pop())));
  if (method === 'POST' && url.pathname.endsWith('/orders')) return orderAnswers.shift() ?? json(500, {});
  return json(404, { error: { code: 'not_found', message: url.pathname } });
});

beforeEach(() => {
  orderAnswers = [];
  fetchMock.mockClear();
  vi.stubGlobal('fetch', fetchMock);
  vi.stubGlobal('matchMedia', (query: string) => ({ matches: false, media: query, addEventListener: () => {}, removeEventListener: () => {} }));
  useQuoteStore.getState().reset();
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <PositionsPage />
    </QueryClientProvider>,
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const orderBodies = () => fetchMock.mock.calls.filter(([, init]) => init?.method === 'POST').map(([, init]) => JSON.parse(String(init?.body)));

describe('PositionsPage', () => {
  it('marks rows and totals from the live quotes', async () => {
    const row = await screen.findByTestId('positions-row-1-MIS');
    // server mark 101: (101 - 100) * 10
    expect(within(row).getByTestId('positions-pnl')).toHaveTextContent('+10.00');
    act(() => useQuoteStore.getState().apply([{ instrument_id: 1, ltp: '105.50' }]));
    expect(within(row).getByTestId('positions-ltp')).toHaveTextContent('105.50');
    expect(within(row).getByTestId('positions-unrealized')).toHaveTextContent('+55.00');
    // TCS short 4 @ 50 marked at 49: +4, plus realized 2.5
    expect(within(screen.getByTestId('positions-row-2-NRML')).getByTestId('positions-pnl')).toHaveTextContent('+6.50');
    expect(screen.getByTestId('positions-total-pnl')).toHaveTextContent('+61.50');
    expect(screen.getByTestId('positions-close-all')).toHaveTextContent('Close all (2)');
  });

  it('closes one position with a market order of the opposite side, one id per confirmation', async () => {
    const row = await screen.findByTestId('positions-row-2-NRML');
    await userEvent.click(within(row).getByTestId('positions-close'));
    const dialog = screen.getByTestId('confirm');
    expect(dialog).toHaveTextContent('Close TCS (NRML)?');
    expect(dialog).toHaveTextContent('Buy 4 TCS (NRML) at market');

    orderAnswers.push(
      json(422, { error: { code: 'risk_rejected', message: 'order value over the limit', details: { rule: 'max_order_notional', limit: '100', requested: '200' } } }),
      json(202, { id: 'o-1', status: 'PENDING' }),
    );
    await userEvent.click(screen.getByTestId('confirm-ok'));
    expect(await screen.findByTestId('positions-close-error')).toHaveTextContent('Refused by risk rule max_order_notional: order value over the limit (limit 100, requested 200)');
    await userEvent.click(screen.getByTestId('confirm-ok'));
    await waitFor(() => expect(screen.queryByTestId('confirm')).not.toBeInTheDocument());

    const [first, second] = orderBodies();
    expect(first).toMatchObject({ instrument_id: 2, side: 'BUY', quantity: 4, order_type: 'MARKET', product: 'NRML', time_in_force: 'DAY' });
    expect(first.client_order_id).toMatch(/^close-/);
    expect(second.client_order_id).toBe(first.client_order_id);
  });

  it('asks "Close N positions?" naming each exit before closing all', async () => {
    await screen.findByTestId('positions-row-1-MIS');
    await userEvent.click(screen.getByTestId('positions-close-all'));
    const dialog = screen.getByTestId('confirm');
    expect(dialog).toHaveTextContent('Close 2 positions?');
    expect(dialog).toHaveTextContent('Sell 10 RELIANCE (MIS) at market');
    expect(dialog).toHaveTextContent('Buy 4 TCS (NRML) at market');
    await userEvent.click(screen.getByTestId('confirm-cancel'));
    expect(fetchMock.mock.calls.some(([, init]) => init?.method === 'DELETE')).toBe(false);
  });
});
