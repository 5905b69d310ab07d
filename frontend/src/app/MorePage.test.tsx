import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { createMemoryRouter, Outlet, RouterProvider } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useAuthStore } from '@/stores/auth';
import { BottomTabBar } from './BottomTabBar';
import MorePage from './MorePage';

function phone(matches: boolean) {
  vi.stubGlobal('matchMedia', (query: string) => ({ matches, media: query, addEventListener: () => {}, removeEventListener: () => {} }));
}

function shell(path: string) {
  const page = (id: string) => <p data-testid={id}>{id}</p>;
  const router = createMemoryRouter(
    [
      {
        path: '/',
        element: (
          <>
            <Outlet />
            <BottomTabBar />
          </>
        ),
        children: [
          { index: true, element: page('home') },
          { path: 'more', element: <MorePage /> },
          { path: 'trades', element: page('trades-page') },
          { path: 'accounts', element: page('accounts-page') },
          { path: 'admin', element: page('admin-page') },
        ],
      },
    ],
    { initialEntries: [path] },
  );
  render(<RouterProvider router={router} />);
  return router;
}

const asRole = (role: 'admin' | 'trader') => useAuthStore.setState({ user: { id: 'u', email: 'u@x.in', name: 'U', role } });

describe('the phone More screen', () => {
  beforeEach(() => phone(true));
  afterEach(() => {
    vi.unstubAllGlobals();
    useAuthStore.setState({ user: null });
  });

  it('is a bottom tab that opens links to trades and broker accounts, not admin, for a trader', async () => {
    asRole('trader');
    const router = shell('/');
    await userEvent.click(screen.getByTestId('tab-more'));
    expect(router.state.location.pathname).toBe('/more');
    expect(screen.getByTestId('more-page')).toBeInTheDocument();
    expect(screen.getByTestId('more-trades')).toHaveTextContent('Trades');
    expect(screen.getByTestId('more-accounts')).toHaveTextContent('Broker accounts');
    expect(screen.queryByTestId('more-admin')).toBeNull();

    await userEvent.click(screen.getByTestId('more-accounts'));
    expect(router.state.location.pathname).toBe('/accounts');
    expect(screen.getByTestId('accounts-page')).toBeInTheDocument();
    expect(screen.getByTestId('tab-more')).toHaveClass('text-accent'); // still the current tab
  });

  it('links to admin for an admin', async () => {
    asRole('admin');
    const router = shell('/more');
    await userEvent.click(screen.getByTestId('more-admin'));
    expect(router.state.location.pathname).toBe('/admin');
    expect(screen.getByTestId('admin-page')).toBeInTheDocument();
  });

  it('keeps the bottom bar to six tabs with the existing ids', () => {
    asRole('admin');
    shell('/');
    const ids = [...screen.getByTestId('bottom-tabs').querySelectorAll('a')].map((a) => a.dataset.testid);
    expect(ids).toEqual(['tab-watchlist', 'tab-chart', 'tab-orders', 'tab-positions', 'tab-funds', 'tab-more']);
  });

  it('sends a desktop visitor of /more home (the desktop tabs show every page)', async () => {
    phone(false);
    asRole('trader');
    const router = shell('/more');
    expect(await screen.findByTestId('home')).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/');
  });
});
