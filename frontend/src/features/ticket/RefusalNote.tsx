/** The API's answer to an order, shown where it belongs in the ticket or modify form. */
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import type { Refusal } from './refusal';

export function useCountdown(seconds: number | null, since: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!seconds) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [seconds, since]);
  return seconds ? Math.min(seconds, Math.max(0, Math.ceil(seconds - (now - since) / 1000))) : 0;
}

export function RefusalNote({ refusal, at }: { refusal: Refusal | null; at: number }) {
  const left = useCountdown(refusal?.kind === 'rate' ? refusal.retryAfter : null, at);
  if (!refusal || refusal.kind === 'fields' || refusal.kind === 'halted') return null;
  if (refusal.kind === 'risk') {
    return (
      <div role="alert" className="rounded border border-danger/40 bg-danger/10 p-2 text-danger" data-testid="ticket-risk-error" data-rule={refusal.rule}>
        <div className="font-semibold">
          Refused by risk check: <span data-testid="ticket-risk-rule">{refusal.rule}</span>
        </div>
        <div>{refusal.message}</div>
        {refusal.numbers.length > 0 && (
          <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-3 text-xs">
            {refusal.numbers.map(([k, v]) => (
              <div key={k} className="contents">
                <dt className="capitalize text-muted">{k}</dt>
                <dd className="num">{v}</dd>
              </div>
            ))}
          </dl>
        )}
      </div>
    );
  }
  if (refusal.kind === 'rate') {
    return (
      <div role="alert" className="rounded border border-warn/40 bg-warn/10 p-2 text-warn" data-testid="ticket-rate-limited">
        Rate limited: {refusal.message}. {left > 0 ? `Retry in ${left} s.` : 'You can retry now.'}
      </div>
    );
  }
  if (refusal.kind === 'duplicate') {
    return (
      <div role="alert" className="rounded border border-warn/40 bg-warn/10 p-2 text-warn" data-testid="ticket-duplicate">
        {refusal.message}
        {refusal.orderId && (
          <>
            {' '}
            First order:{' '}
            <Link className="underline" to={`/orders?order=${refusal.orderId}`} data-testid="ticket-duplicate-link">
              {refusal.orderId.slice(0, 8)}
            </Link>
          </>
        )}
      </div>
    );
  }
  return (
    <div role="alert" className="rounded border border-danger/40 bg-danger/10 p-2 text-danger" data-testid="ticket-error">
      {refusal.message}
    </div>
  );
}

export function HaltedBanner({ reason, message }: { reason?: string | null; message?: string }) {
  return (
    <div role="alert" className="border-b border-danger/40 bg-danger/10 px-4 py-2 text-danger" data-testid="ticket-halted">
      <b>Trading is halted.</b> {message || 'New orders are refused; open orders can still be cancelled.'}
      {reason && <span className="block text-xs">Reason: {reason}</span>}
    </div>
  );
}
