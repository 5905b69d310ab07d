/** The header: trading state, connection, market session with the IST clock, theme, user menu. */
import { stateReason } from '@/features/funds/state';
import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { fetchMeta, useAccount } from '@/api/queries';
import { qk } from '@/api/queryClient';
import type { Meta } from '@/api/types';
import { Badge, Button, cx } from '@/components/ui';
import { logout } from '@/features/auth/session';
import { formatClock, formatTime, setSessionTimeZone } from '@/lib/format';
import { useAuthStore } from '@/stores/auth';
import { useSocketStore } from '@/stores/socket';
import { useThemeStore } from '@/stores/theme';
import { useUiStore } from '@/stores/ui';
import { marketOpenAt, serverOffset } from './clock';

interface TimedMeta extends Meta {
  offset: number;
  fetchedAt: number;
}

async function fetchTimedMeta(): Promise<TimedMeta> {
  const sent = Date.now();
  const meta = await fetchMeta();
  const received = Date.now();
  return { ...meta, offset: serverOffset(meta.server_time, sent, received), fetchedAt: received };
}

export function useServerMeta() {
  const q = useQuery({ queryKey: [...qk.meta, 'timed'], queryFn: fetchTimedMeta, staleTime: 60_000, refetchInterval: 60_000 });
  useEffect(() => {
    if (q.data?.timezone) setSessionTimeZone(q.data.timezone);
  }, [q.data?.timezone]);
  return q;
}

export function TradingStateBadge() {
  const account = useAccount();
  const state = account.data?.trading_state;
  const tone = state === 'ACTIVE' ? 'up' : state === 'REDUCING' ? 'warn' : state === 'HALTED' ? 'danger' : 'muted';
  return (
    <Badge tone={tone} data-testid="trading-state" data-state={state ?? 'unknown'} title={account.data?.state_reason ?? 'Trading state of your account'}>
      {state ?? '…'}
    </Badge>
  );
}

export function ConnectionIndicator() {
  const { status, attempt, nextRetryAt } = useSocketStore();
  const [, tick] = useState(0);
  useEffect(() => {
    if (status !== 'reconnecting') return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [status]);
  const label =
    status === 'open'
      ? 'Live'
      : status === 'reconnecting'
        ? `Reconnecting${nextRetryAt ? ` in ${Math.max(0, Math.ceil((nextRetryAt - Date.now()) / 1000))}s` : '…'}`
        : status === 'connecting'
          ? 'Connecting…'
          : 'Offline';
  const dot = status === 'open' ? 'bg-up' : status === 'closed' || status === 'idle' ? 'bg-down' : 'bg-warn animate-pulse';
  return (
    <span className="inline-flex items-center gap-1.5 text-xs text-muted" data-testid="connection-status" data-status={status} title={attempt ? `attempt ${attempt}` : undefined} role="status">
      <span className={cx('h-2 w-2 rounded-full', dot)} aria-hidden />
      {label}
    </span>
  );
}

function MarketClock() {
  const meta = useServerMeta();
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  if (!meta.data) return null;
  const serverNow = now + meta.data.offset;
  const open = marketOpenAt(serverNow, meta.data.market);
  const next = open ? meta.data.market.closes_at : meta.data.market.opens_at;
  return (
    <span className="hidden items-center gap-2 text-xs sm:inline-flex">
      <Badge tone={open ? 'up' : 'muted'} data-testid="market-status" data-open={String(open)} title={next ? `${open ? 'Closes' : 'Opens'} ${formatTime(next)}` : undefined}>
        {open ? 'Market open' : 'Market closed'}
      </Badge>
      <span className="num text-muted" data-testid="clock">
        {formatClock(new Date(serverNow))}
      </span>
    </span>
  );
}

function UserMenu() {
  const user = useAuthStore((s) => s.user);
  const confirmOrders = useUiStore((s) => s.confirmOrders);
  const setConfirm = useUiStore((s) => s.setConfirmOrders);
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => !ref.current?.contains(e.target as Node) && setOpen(false);
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', esc);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', esc);
    };
  }, [open]);
  const initials = (user?.name || user?.email || '?').slice(0, 2).toUpperCase();
  return (
    <div className="relative" ref={ref}>
      <Button variant="ghost" size="sm" aria-haspopup="menu" aria-expanded={open} onClick={() => setOpen(!open)} data-testid="user-menu">
        <span aria-hidden className="flex h-6 w-6 items-center justify-center rounded-full bg-accent/15 text-[11px] font-bold text-accent">{initials}</span>
        <span className="hidden max-w-40 truncate lg:inline">{user?.name || user?.email}</span>
        <span className="sr-only">User menu</span>
      </Button>
      {open && (
        <div role="menu" className="absolute right-0 z-40 mt-1 w-60 rounded-md border border-line bg-surface py-1 shadow-lg" data-testid="user-menu-panel">
          <div className="border-b border-line px-3 py-2">
            <div className="truncate font-medium">{user?.name || '—'}</div>
            <div className="truncate text-xs text-muted" data-testid="user-email">
              {user?.email}
            </div>
            <div className="text-xs text-muted" data-testid="user-role">
              {user?.role}
            </div>
          </div>
          <label className="flex cursor-pointer items-center gap-2 px-3 py-2 hover:bg-raised">
            <input type="checkbox" checked={confirmOrders} onChange={(e) => setConfirm(e.target.checked)} data-testid="toggle-confirm-orders" />
            Confirm orders before sending
          </label>
          <Link role="menuitem" to="/accounts" className="block px-3 py-2 hover:bg-raised" onClick={() => setOpen(false)}>
            Broker accounts
          </Link>
          {user?.role === 'admin' && (
            <Link role="menuitem" to="/admin" className="block px-3 py-2 hover:bg-raised" onClick={() => setOpen(false)}>
              Admin
            </Link>
          )}
          <button role="menuitem" type="button" className="block w-full px-3 py-2 text-left text-danger hover:bg-raised" onClick={() => void logout()} data-testid="logout">
            Log out
          </button>
        </div>
      )}
    </div>
  );
}

function ThemeToggle() {
  const { theme, toggle } = useThemeStore();
  return (
    <Button variant="ghost" size="sm" onClick={toggle} data-testid="theme-toggle" aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`} title="Theme">
      {theme === 'dark' ? '☀' : '☾'}
    </Button>
  );
}

/** Under the header while the account is not ACTIVE: what the trader can still do, and why. */
export function TradingStateBanner() {
  const account = useAccount().data;
  if (!account || account.trading_state === 'ACTIVE') return null;
  const halted = account.trading_state === 'HALTED';
  const reason = stateReason(account);
  return (
    <div role="status" className={cx('shrink-0 border-b px-3 py-1 text-xs', halted ? 'border-danger/40 bg-danger/10 text-danger' : 'border-warn/40 bg-warn/10 text-warn')} data-testid="trading-state-banner" data-state={account.trading_state}>
      <b>{halted ? 'Trading halted' : 'Reducing only'}:</b> {halted ? 'new orders are refused; open orders can still be cancelled.' : 'only orders that shrink a position are accepted.'}
      {reason && <span> Reason: {reason}</span>}
    </div>
  );
}

export default function Header() {
  return (
    <header className="flex h-11 shrink-0 items-center gap-3 border-b border-line bg-surface px-3" data-testid="header">
      <h1 className="sr-only">tradingapp terminal</h1>
      <Link to="/" className="flex items-center gap-2 font-semibold" aria-label="tradingapp home">
        <img src="/favicon.svg" alt="" className="h-5 w-5" />
        <span className="hidden sm:inline">tradingapp</span>
      </Link>
      <TradingStateBadge />
      <ConnectionIndicator />
      <div className="flex-1" />
      <MarketClock />
      <ThemeToggle />
      <UserMenu />
    </header>
  );
}
