import { act, render, screen } from '@testing-library/react';
import { Suspense } from 'react';
import { createMemoryRouter, Outlet, RouterProvider } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useAuthStore } from '@/stores/auth';
import { routes } from './routes';

// The real route table and guards; the pages themselves are stand-ins (no API, no socket).
vi.mock('./Layout', () => ({
  Layout: () => (
    <Suspense fallback={<p>loading</p>}>
      <Outlet />
    </Suspense>
  ),
}));
vi.mock('@/features/chart/TerminalPage', () => ({ default: () => <p data-testid="terminal-page">terminal</p> }));
vi.mock('@/features/admin', () => ({ default: () => <p data-testid="admin-page">admin</p> }));
vi.mock('@/features/auth/LoginPage', () => ({ default: () => <p data-testid="login-form">login</p> }));

function open(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  render(<RouterProvider router={router} />);
  return router;
}

const session = (role: 'admin' | 'trader' | null) =>
  useAuthStore.setState({ accessToken: 'a', refreshToken: 'r', user: role ? { id: 'u', email: 'u@x.in', name: 'U', role } : null });

describe('admin route', () => {
  afterEach(() => useAuthStore.getState().clear());

  it('sends a trader home with the address replaced: /admin does not stay in the location or history', async () => {
    session('trader');
    const router = open('/admin');
    expect(await screen.findByTestId('terminal-page')).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/');
    expect(router.state.historyAction).toBe('REPLACE');
    expect(screen.queryByTestId('admin-page')).toBeNull();
  });

  it('shows the admin page to an admin at /admin', async () => {
    session('admin');
    const router = open('/admin');
    expect(await screen.findByTestId('admin-page')).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/admin');
  });

  it('renders nothing of the admin page while the role is unknown, then sends a trader home', async () => {
    session(null);
    const router = open('/admin');
    expect(await screen.findByText('Checking access…')).toBeInTheDocument();
    expect(screen.queryByTestId('admin-page')).toBeNull();
    expect(router.state.location.pathname).toBe('/admin');
    act(() => useAuthStore.getState().setUser({ id: 'u', email: 'u@x.in', name: 'U', role: 'trader' }));
    expect(await screen.findByTestId('terminal-page')).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/');
  });

  it('sends a visitor without a session to /login, remembering /admin', async () => {
    const router = open('/admin');
    expect(await screen.findByTestId('login-form')).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/login');
    expect(router.state.location.state).toEqual({ from: '/admin' });
  });

  it('sends an unknown address home', async () => {
    session('trader');
    const router = open('/no-such-page');
    expect(await screen.findByTestId('terminal-page')).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/');
  });
});
