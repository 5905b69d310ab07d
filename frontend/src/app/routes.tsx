/** The route table (router.tsx makes the browser's router of it; tests, a memory router). Pages
 * other than the first screen are lazy chunks (admin, books, accounts). Each of /positions
 * /trades /funds /accounts /admin renders src/features/<name>/index.tsx's default; /more is the
 * phone's list of the pages its bottom bar has no room for. */
import { lazy } from 'react';
import { Navigate, type RouteObject } from 'react-router';
import LoginPage from '@/features/auth/LoginPage';
import RegisterPage from '@/features/auth/RegisterPage';
import TerminalPage from '@/features/chart/TerminalPage';
import { Layout } from './Layout';
import MorePage from './MorePage';
import { RequireAdmin, RequireAuth } from './RequireAuth';

const OrdersPage = lazy(() => import('@/features/orders'));
const PositionsPage = lazy(() => import('@/features/positions'));
const TradesPage = lazy(() => import('@/features/trades'));
const FundsPage = lazy(() => import('@/features/funds'));
const AccountsPage = lazy(() => import('@/features/accounts'));
const AdminPage = lazy(() => import('@/features/admin'));

export const routes: RouteObject[] = [
  { path: '/login', element: <LoginPage /> },
  { path: '/register', element: <RegisterPage /> },
  {
    path: '/',
    element: (
      <RequireAuth>
        <Layout />
      </RequireAuth>
    ),
    children: [
      { index: true, element: <TerminalPage home /> },
      { path: 'chart', element: <TerminalPage /> },
      { path: 'orders', element: <OrdersPage /> },
      { path: 'positions', element: <PositionsPage /> },
      { path: 'trades', element: <TradesPage /> },
      { path: 'funds', element: <FundsPage /> },
      { path: 'accounts', element: <AccountsPage /> },
      { path: 'more', element: <MorePage /> },
      {
        path: 'admin',
        element: (
          <RequireAdmin>
            <AdminPage />
          </RequireAdmin>
        ),
      },
      { path: '*', element: <Navigate to="/" replace /> },
    ],
  },
];
