/** Instrument search: type a symbol, name or segment, pick from the dropdown, Enter adds. */
import { forwardRef, useDeferredValue, useId, useState } from 'react';
import type { Instrument } from '@/api/types';
import { cx } from '@/components/ui';
import { useInstrumentSearch } from './api';
import { parseSearch } from './search';

interface Props {
  inList: (id: number) => boolean;
  onAdd: (instrument: Instrument) => void;
  disabled?: boolean;
}

export const SearchBox = forwardRef<HTMLInputElement, Props>(function SearchBox({ inList, onAdd, disabled }, ref) {
  const [text, setText] = useState('');
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const deferred = useDeferredValue(text);
  const { q, segment } = parseSearch(deferred);
  const search = useInstrumentSearch(q, segment);
  const results = text.trim() ? (search.data?.items ?? []) : [];
  const listId = useId();

  const add = (i: Instrument | undefined) => {
    if (!i) return;
    onAdd(i);
    setText('');
    setOpen(false);
    setActive(0);
  };

  return (
    <div className="relative p-2">
      <input
        ref={ref}
        type="search"
        role="combobox"
        aria-expanded={open && results.length > 0}
        aria-controls={listId}
        aria-activedescendant={open && results[active] ? `${listId}-${results[active].id}` : undefined}
        aria-label="Search instruments to add"
        placeholder="Search (e.g. RELIANCE, nsefo nifty)   /"
        data-testid="watchlist-search"
        disabled={disabled}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setOpen(true);
          setActive(0);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === 'ArrowDown') {
            e.preventDefault();
            setActive((a) => Math.min(a + 1, results.length - 1));
          } else if (e.key === 'ArrowUp') {
            e.preventDefault();
            setActive((a) => Math.max(a - 1, 0));
          } else if (e.key === 'Enter') {
            e.preventDefault();
            add(results[active]);
          } else if (e.key === 'Escape') {
            setText('');
            setOpen(false);
            (e.target as HTMLInputElement).blur();
          }
          e.stopPropagation();
        }}
        className="h-9 w-full rounded border border-line bg-raised px-2 outline-none placeholder:text-muted focus:border-accent"
      />
      {open && text.trim() && (
        <ul id={listId} role="listbox" aria-label="Matching instruments" className="absolute left-2 right-2 z-30 mt-1 max-h-80 overflow-auto rounded border border-line bg-surface py-1 shadow-lg" data-testid="watchlist-search-results">
          {results.length === 0 && <li className="px-3 py-2 text-muted">{search.isFetching ? 'Searching…' : 'No instrument matches'}</li>}
          {results.map((i, n) => (
            <li
              key={i.id}
              id={`${listId}-${i.id}`}
              role="option"
              aria-selected={n === active}
              data-testid={`watchlist-result-${i.id}`}
              data-symbol={i.symbol}
              onMouseDown={(e) => {
                e.preventDefault();
                add(i);
              }}
              onMouseEnter={() => setActive(n)}
              className={cx('flex cursor-pointer items-center gap-2 px-3 py-1.5', n === active && 'bg-raised')}
            >
              <span className="font-medium">{i.symbol}</span>
              <span className="text-xs text-muted">{i.exchange_segment}</span>
              <span className="min-w-0 flex-1 truncate text-xs text-muted">{i.name}</span>
              {inList(i.id) && <span className="text-xs text-accent">added</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
});
