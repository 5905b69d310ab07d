/** Funds page (/funds): cash, used margin, available funds, realized and unrealized P&L
 * (GET /funds), and the account (GET /account): the effective trading state with its reason (and
 * the user's own and the global state it comes from), today's order count and the risk limits the
 * user trades under. qk.funds and qk.account are refreshed by the socket on fills and after a
 * reconnect, and every 15 s.
 *
 * data-testid: funds-page, funds-cash, funds-used-margin, funds-available, funds-realized,
 * funds-unrealized, funds-error, account-state, account-state-reason, account-user-state,
 * account-global-state, account-session-day, account-orders-today, account-limits,
 * account-limit-<limit name, kebab-case> (e.g. account-limit-max-order-quantity), account-error. */
import { useAccount, useFunds } from '@/api/queries';
import type { Funds } from '@/api/types';
import { cx, Empty, ErrorNote } from '@/components/ui';
import { formatAmount, formatQty, formatSigned, toneClass } from '@/lib/format';
import { formatLimit, LIMITS, limitTestId, STATE_INFO } from './limits';
import { StateBadge } from './StateBadge';
import { stateReason } from './state';

const FIGURES: { key: keyof Funds; label: string; testId: string; signed?: boolean }[] = [
  { key: 'available', label: 'Available', testId: 'funds-available' },
  { key: 'used_margin', label: 'Used margin', testId: 'funds-used-margin' },
  { key: 'cash', label: 'Cash', testId: 'funds-cash' },
  { key: 'realized_pnl', label: 'Realized P&L', testId: 'funds-realized', signed: true },
  { key: 'unrealized_pnl', label: 'Unrealized P&L', testId: 'funds-unrealized', signed: true },
];

function FundsCards() {
  const funds = useFunds();
  if (funds.error) return <ErrorNote error={funds.error} testId="funds-error" />;
  return (
    <div className="grid grid-cols-2 gap-2 md:grid-cols-5">
      {FIGURES.map((f) => {
        const value = funds.data?.[f.key];
        return (
          <div key={f.key} className={cx('rounded border border-line bg-surface p-3', f.key === 'available' && 'col-span-2 md:col-span-1')}>
            <div className="text-xs text-muted">{f.label}</div>
            <div className={cx('num text-lg font-semibold', f.signed && toneClass(value))} data-testid={f.testId}>
              {funds.isPending ? '…' : f.signed ? formatSigned(value) : formatAmount(value)}
            </div>
          </div>
        );
      })}
    </div>
  );
}

function AccountPanel() {
  const account = useAccount();
  if (account.error) return <ErrorNote error={account.error} testId="account-error" />;
  const a = account.data;
  if (!a) return <Empty>Loading…</Empty>;
  const maxPerDay = a.limits.max_orders_per_day;
  const reason = stateReason(a);
  return (
    <div className="grid gap-3 md:grid-cols-[minmax(0,1fr)_minmax(0,2fr)]">
      <div className="space-y-3 rounded border border-line bg-surface p-3">
        <h2 className="text-sm font-semibold">Trading state</h2>
        <div className="flex items-center gap-2">
          <StateBadge state={a.trading_state} testId="account-state" />
          <span className="text-xs text-muted">{STATE_INFO[a.trading_state].effect}</span>
        </div>
        {reason && (
          <p className="text-sm" data-testid="account-state-reason">
            <span className="text-muted">Reason: </span>
            {reason}
          </p>
        )}
        <dl className="grid grid-cols-2 gap-x-3 gap-y-1 text-sm">
          <dt className="text-muted">Your account</dt>
          <dd>
            <StateBadge state={a.user_trading_state} testId="account-user-state" />
          </dd>
          <dt className="text-muted">Everyone (global)</dt>
          <dd>
            <StateBadge state={a.global_trading_state} testId="account-global-state" />
          </dd>
          <dt className="text-muted">Session day</dt>
          <dd className="num" data-testid="account-session-day">
            {a.session_day}
          </dd>
          <dt className="text-muted">Orders today</dt>
          <dd className="num" data-testid="account-orders-today">
            {formatQty(a.orders_today)} / {formatQty(maxPerDay)}
          </dd>
        </dl>
      </div>
      <div className="rounded border border-line bg-surface">
        <h2 className="border-b border-line px-3 py-2 text-sm font-semibold">Risk limits</h2>
        <dl className="grid grid-cols-1 sm:grid-cols-2" data-testid="account-limits">
          {LIMITS.map((l) => (
            <div key={l.name} className="flex items-baseline justify-between gap-3 border-b border-line px-3 py-1.5" title={l.hint}>
              <dt className="text-muted">{l.label}</dt>
              <dd className="num text-right font-medium" data-testid={`account-limit-${limitTestId(l.name)}`}>
                {formatLimit(l.kind, a.limits[l.name])}
              </dd>
            </div>
          ))}
        </dl>
      </div>
    </div>
  );
}

export default function FundsPage() {
  return (
    <section className="flex flex-col gap-3 p-3 md:p-4" data-testid="funds-page">
      <h1 className="text-base font-semibold">Funds</h1>
      <FundsCards />
      <AccountPanel />
    </section>
  );
}
