/** The watchlist: named lists as tabs (kept on the server), search to add, live rows. Arrow keys
 * move the selection (the chart follows), `/` focuses the search, B/S open the ticket. */
import { useCallback, useEffect, useId, useMemo, useRef, useState } from 'react';
import { useNavigate } from 'react-router';
import { useVirtualizer } from '@tanstack/react-virtual';
import { toast } from 'sonner';
import type { Instrument } from '@/api/types';
import { Button, ConfirmDialog, cx, Empty } from '@/components/ui';
import { useLiveQuotes } from '@/features/live';
import { useIsPhone } from '@/lib/useMedia';
import { useUiStore } from '@/stores/ui';
import { useEnsureWatchlist, useWatchlistMutations, useWatchlists } from './api';
import { SearchBox } from './SearchBox';
import { WatchlistRow } from './WatchlistRow';
import { currentWatchlist } from './warm';

const ROW = 48;

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return Boolean(el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName)));
}

export function WatchlistPanel() {
  const lists = useWatchlists();
  useEnsureWatchlist(lists.data);
  const m = useWatchlistMutations();
  const watchlistId = useUiStore((s) => s.watchlistId);
  const setWatchlist = useUiStore((s) => s.setWatchlist);
  const selected = useUiStore((s) => s.selectedInstrumentId);
  const select = useUiStore((s) => s.select);
  const openTicket = useUiStore((s) => s.openTicket);
  const navigate = useNavigate();
  const phone = useIsPhone();
  const searchRef = useRef<HTMLInputElement>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [confirmDrop, setConfirmDrop] = useState(false);
  const baseId = useId();

  const all = lists.data ?? [];
  const current = currentWatchlist(all, watchlistId);
  const instruments = useMemo(() => current?.instruments ?? [], [current]);
  const ids = useMemo(() => instruments.map((i) => i.id), [instruments]);
  useLiveQuotes(ids, 'full');

  useEffect(() => {
    if (current && current.id !== watchlistId) setWatchlist(current.id);
  }, [current, watchlistId, setWatchlist]);
  useEffect(() => {
    if (!selected && instruments[0]) select(instruments[0].id);
  }, [selected, instruments, select]);

  const virtual = useVirtualizer({ count: instruments.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW, overscan: 8 });

  const move = useCallback(
    (delta: number) => {
      if (!instruments.length) return;
      const at = instruments.findIndex((i) => i.id === selected);
      const next = Math.min(instruments.length - 1, Math.max(0, at < 0 ? 0 : at + delta));
      select(instruments[next].id);
      virtual.scrollToIndex(next, { align: 'auto' });
    },
    [instruments, selected, select, virtual],
  );

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target) || document.querySelector('[role="dialog"]')) return;
      if (e.key === '/') {
        e.preventDefault();
        searchRef.current?.focus();
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if ((e.target as HTMLElement)?.closest?.('[role="tablist"],[role="radiogroup"]')) return;
        e.preventDefault();
        move(e.key === 'ArrowDown' ? 1 : -1);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [move]);

  const add = (i: Instrument) => {
    if (!current) return;
    if (instruments.some((x) => x.id === i.id)) {
      select(i.id);
      return;
    }
    m.add.mutate(
      { listId: current.id, instrument: i },
      {
        onSuccess: () => select(i.id),
        onError: (err) => toast.error(`Could not add ${i.symbol}: ${(err as Error).message}`),
      },
    );
  };
  const onSelect = useCallback((id: number) => select(id), [select]);
  const onTrade = useCallback((id: number, side: 'BUY' | 'SELL') => openTicket({ instrumentId: id, side }), [openTicket]);
  const onChart = useCallback(
    (id: number) => {
      select(id);
      navigate('/chart');
    },
    [select, navigate],
  );
  const onRemove = useCallback((id: number) => current && m.remove.mutate({ listId: current.id, instrumentId: id }), [current, m.remove]);

  const nextName = () => {
    for (let n = all.length + 1; ; n++) if (!all.some((w) => w.name === `Watchlist ${n}`)) return `Watchlist ${n}`;
  };

  return (
    <section className="flex min-h-0 flex-1 flex-col bg-surface" data-testid="watchlist">
      <SearchBox ref={searchRef} onAdd={add} inList={(id) => ids.includes(id)} disabled={!current} />
      <div className="flex shrink-0 items-center border-b border-line px-2">
      <div role="tablist" aria-label="Watchlists" className="flex min-w-0 flex-1 items-center gap-0.5 overflow-x-auto" data-testid="watchlist-tabs">
        {all.map((w, n) =>
          renaming === w.id ? (
            <input
              key={w.id}
              autoFocus
              aria-label="List name"
              defaultValue={w.name}
              maxLength={40}
              data-testid="watchlist-rename-input"
              className="h-7 w-28 rounded border border-accent bg-surface px-1"
              onBlur={() => setRenaming(null)}
              onKeyDown={(e) => {
                e.stopPropagation();
                if (e.key === 'Escape') setRenaming(null);
                if (e.key === 'Enter') {
                  const name = e.currentTarget.value.trim();
                  if (name && name !== w.name) m.rename.mutate({ listId: w.id, name }, { onError: (err) => toast.error((err as Error).message) });
                  setRenaming(null);
                }
              }}
            />
          ) : (
            <button
              key={w.id}
              role="tab"
              type="button"
              aria-selected={w.id === current?.id}
              data-testid={`watchlist-tab-${n + 1}`}
              title={`${w.name} (double-click to rename)`}
              onClick={() => setWatchlist(w.id)}
              onDoubleClick={() => setRenaming(w.id)}
              className={cx('-mb-px shrink-0 border-b-2 px-2 py-1.5 text-xs font-medium', w.id === current?.id ? 'border-accent text-fg' : 'border-transparent text-muted hover:text-fg')}
            >
              {w.name}
            </button>
          ),
        )}
      </div>
        <button
          type="button"
          aria-label="New watchlist"
          title="New watchlist"
          data-testid="watchlist-new"
          disabled={all.length >= 10 || m.create.isPending}
          onClick={() => m.create.mutate(nextName(), { onError: (err) => toast.error((err as Error).message) })}
          className="ml-auto shrink-0 px-2 text-base text-muted hover:text-fg disabled:opacity-40"
        >
          +
        </button>
      </div>
      <div
        ref={scrollRef}
        tabIndex={0}
        aria-label={current ? `${current.name}: arrow keys move, B buy, S sell` : 'Instruments'}
        className="relative min-h-0 flex-1 overflow-auto outline-none focus-visible:ring-1 focus-visible:ring-accent"
        data-testid="watchlist-rows"
        onKeyDown={(e) => {
          if (e.key === 'Enter' && phone && selected) navigate('/chart');
        }}
      >
        {lists.isLoading && <Empty>Loading…</Empty>}
        {current && instruments.length === 0 && <Empty testId="watchlist-empty">Search above to add instruments.</Empty>}
        <div role="list" aria-label={current ? `${current.name} instruments` : 'Instruments'} style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {virtual.getVirtualItems().map((row) => {
            const i = instruments[row.index];
            return (
              <WatchlistRow
                key={i.id}
                optionId={`${baseId}-${i.id}`}
                instrument={i}
                selected={i.id === selected}
                onSelect={onSelect}
                onTrade={onTrade}
                onChart={onChart}
                onRemove={onRemove}
                style={{ top: row.start, height: ROW }}
              />
            );
          })}
        </div>
      </div>
      <div className="flex shrink-0 items-center justify-between border-t border-line px-2 py-1 text-xs text-muted">
        <span data-testid="watchlist-count">
          {instruments.length} / 250
        </span>
        {current && (
          <span className="flex gap-1">
            <Button size="sm" variant="ghost" onClick={() => setRenaming(current.id)} data-testid="watchlist-rename">
              Rename
            </Button>
            <Button size="sm" variant="ghost" onClick={() => setConfirmDrop(true)} disabled={all.length <= 1} data-testid="watchlist-delete">
              Delete list
            </Button>
          </span>
        )}
      </div>
      <ConfirmDialog
        open={confirmDrop}
        title={`Delete the list "${current?.name}"?`}
        body={`Its ${instruments.length} instrument${instruments.length === 1 ? '' : 's'} leave this list only.`}
        confirmLabel="Delete list"
        onCancel={() => setConfirmDrop(false)}
        onConfirm={() => {
          if (current) m.drop.mutate(current.id);
          setConfirmDrop(false);
        }}
      />
    </section>
  );
}
