/** Small shared components on the theme tokens (src/index.css). Features compose these rather than
 * styling raw elements, so both themes and focus rings stay consistent. */
import { useEffect, useId, useRef, type ButtonHTMLAttributes, type InputHTMLAttributes, type ReactNode } from 'react';

export function cx(...parts: (string | false | null | undefined)[]): string {
  return parts.filter(Boolean).join(' ');
}

type Variant = 'primary' | 'buy' | 'sell' | 'danger' | 'ghost' | 'default';
const VARIANTS: Record<Variant, string> = {
  primary: 'bg-accent text-white hover:opacity-90 dark:text-black',
  buy: 'bg-buy text-white hover:opacity-90',
  sell: 'bg-sell text-white hover:opacity-90',
  danger: 'bg-danger text-white hover:opacity-90 dark:text-black',
  ghost: 'hover:bg-raised',
  default: 'border border-line bg-surface hover:bg-raised',
};

export function Button({ variant = 'default', size = 'md', className, ...props }: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant; size?: 'sm' | 'md' }) {
  return (
    <button
      type="button"
      {...props}
      className={cx(
        'inline-flex items-center justify-center gap-1 rounded font-medium outline-none focus-visible:ring-2 focus-visible:ring-accent disabled:cursor-not-allowed disabled:opacity-50',
        size === 'sm' ? 'h-7 px-2 text-xs' : 'h-9 px-3',
        VARIANTS[variant],
        className,
      )}
    />
  );
}

export function Input({ className, ...props }: InputHTMLAttributes<HTMLInputElement>) {
  return (
    <input
      {...props}
      className={cx(
        'h-9 w-full rounded border border-line bg-surface px-2 text-fg outline-none placeholder:text-muted focus:border-accent focus-visible:ring-1 focus-visible:ring-accent aria-[invalid=true]:border-danger',
        className,
      )}
    />
  );
}

export function Field({ label, htmlFor, error, hint, children, testId }: { label: ReactNode; htmlFor: string; error?: string | null; hint?: ReactNode; children: ReactNode; testId?: string }) {
  return (
    <div className="space-y-1">
      <label htmlFor={htmlFor} className="block text-xs font-medium text-muted">
        {label}
      </label>
      {children}
      {hint && !error && <p className="text-xs text-muted">{hint}</p>}
      {error && (
        <p role="alert" className="text-xs text-danger" data-testid={testId ? `${testId}-error` : undefined} id={`${htmlFor}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** A row of toggle buttons for one choice (product, validity, order type, view). */
export function Segmented<T extends string>({ value, options, onChange, label, testId, size = 'md' }: { value: T; options: readonly T[] | readonly { value: T; label: ReactNode }[]; onChange: (v: T) => void; label: string; testId?: string; size?: 'sm' | 'md' }) {
  const opts = options.map((o) => (typeof o === 'string' ? { value: o, label: o } : o)) as { value: T; label: ReactNode }[];
  return (
    <div role="radiogroup" aria-label={label} className="inline-flex rounded border border-line bg-raised p-0.5" data-testid={testId}>
      {opts.map((o) => (
        <button
          key={o.value}
          type="button"
          role="radio"
          aria-checked={o.value === value}
          data-testid={testId ? `${testId}-${o.value}` : undefined}
          onClick={() => onChange(o.value)}
          className={cx(
            'rounded px-2 font-medium outline-none focus-visible:ring-2 focus-visible:ring-accent',
            size === 'sm' ? 'h-6 text-xs' : 'h-7',
            o.value === value ? 'bg-surface text-fg shadow-sm' : 'text-muted hover:text-fg',
          )}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}

export function Tabs<T extends string>({ value, tabs, onChange, testId, label }: { value: T; tabs: readonly { value: T; label: ReactNode }[]; onChange: (v: T) => void; testId?: string; label: string }) {
  return (
    <div role="tablist" aria-label={label} className="flex gap-1 border-b border-line" data-testid={testId}>
      {tabs.map((t) => (
        <button
          key={t.value}
          role="tab"
          type="button"
          aria-selected={t.value === value}
          data-testid={testId ? `${testId}-${t.value}` : undefined}
          onClick={() => onChange(t.value)}
          className={cx(
            '-mb-px border-b-2 px-3 py-1.5 font-medium outline-none focus-visible:ring-2 focus-visible:ring-accent',
            t.value === value ? 'border-accent text-fg' : 'border-transparent text-muted hover:text-fg',
          )}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

export function Badge({ tone = 'muted', children, className, ...rest }: { tone?: 'up' | 'down' | 'warn' | 'muted' | 'accent' | 'danger'; children: ReactNode; className?: string; [k: `data-${string}`]: string | undefined; title?: string }) {
  const tones = {
    up: 'border-up/40 bg-up/10 text-up',
    down: 'border-down/40 bg-down/10 text-down',
    warn: 'border-warn/40 bg-warn/10 text-warn',
    danger: 'border-danger/40 bg-danger/10 text-danger',
    muted: 'border-line bg-raised text-muted',
    accent: 'border-accent/40 bg-accent/10 text-accent',
  } as const;
  return (
    <span {...rest} className={cx('inline-flex items-center gap-1 rounded border px-1.5 py-0.5 text-xs font-semibold', tones[tone], className)}>
      {children}
    </span>
  );
}

/** A modal dialog: Esc and the backdrop close it, focus moves into it and comes back after. */
export function Dialog({ open, onClose, title, children, testId, className, labelledBy }: { open: boolean; onClose: () => void; title?: ReactNode; children: ReactNode; testId?: string; className?: string; labelledBy?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useId();
  useEffect(() => {
    if (!open) return;
    const before = document.activeElement as HTMLElement | null;
    const el = ref.current;
    // an element marked data-autofocus first, else the first field, else the first control
    const first =
      el?.querySelector<HTMLElement>('[data-autofocus]') ??
      el?.querySelector<HTMLElement>('input:not([disabled]), select, textarea') ??
      el?.querySelector<HTMLElement>('button:not([disabled])');
    (first ?? el)?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        onClose();
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => {
      window.removeEventListener('keydown', onKey, true);
      before?.focus?.();
    };
  }, [open, onClose]);
  if (!open) return null;
  return (
    <div className="fixed inset-0 z-50 flex items-center justify-center bg-black/40 p-0 sm:p-4" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        ref={ref}
        role="dialog"
        aria-modal="true"
        aria-labelledby={labelledBy ?? (title ? titleId : undefined)}
        tabIndex={-1}
        data-testid={testId}
        className={cx('max-h-full w-full overflow-auto bg-surface shadow-xl outline-none sm:max-w-md sm:rounded-lg sm:border sm:border-line', className)}
      >
        {title && (
          <h2 id={titleId} className="border-b border-line px-4 py-3 text-base font-semibold">
            {title}
          </h2>
        )}
        {children}
      </div>
    </div>
  );
}

/** Asks once, naming what will happen ("Cancel 3 open orders?"). */
export function ConfirmDialog({ open, title, body, confirmLabel, onConfirm, onCancel, busy, testId = 'confirm' }: { open: boolean; title: ReactNode; body?: ReactNode; confirmLabel: string; onConfirm: () => void; onCancel: () => void; busy?: boolean; testId?: string }) {
  return (
    <Dialog open={open} onClose={onCancel} title={title} testId={testId}>
      {body && <div className="px-4 py-3 text-muted">{body}</div>}
      <div className="flex justify-end gap-2 px-4 py-3">
        <Button onClick={onCancel} data-testid={`${testId}-cancel`}>
          Keep
        </Button>
        <Button variant="danger" onClick={onConfirm} disabled={busy} data-testid={`${testId}-ok`} data-autofocus>
          {confirmLabel}
        </Button>
      </div>
    </Dialog>
  );
}

export function Empty({ children, testId }: { children: ReactNode; testId?: string }) {
  return (
    <div className="p-6 text-center text-muted" data-testid={testId}>
      {children}
    </div>
  );
}

export function ErrorNote({ error, testId }: { error: unknown; testId?: string }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p role="alert" className="p-3 text-danger" data-testid={testId}>
      {message}
    </p>
  );
}
