/** Candles of one instrument and interval: the latest span first, older spans as the user scrolls
 * back (loadOlder), until the server has nothing older (three empty spans in a row). */
import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from '@/api/client';
import type { Candle } from '@/api/types';
import type { Interval } from '@/stores/ui';
import { mergeBars, SPAN_MS, toBar, type Bar } from './candles';

interface State {
  bars: Bar[];
  loading: boolean;
  error: Error | null;
  exhausted: boolean;
  /** bumps when bars were replaced (not just extended at the end) */
  version: number;
}

async function fetchSpan(id: number, interval: Interval, start?: Date, end?: Date): Promise<Bar[]> {
  const page = await api.get<{ items: Candle[] }>(`/instruments/${id}/candles`, {
    query: { interval, start: start?.toISOString(), end: end?.toISOString() },
  });
  return page.items.map(toBar);
}

export function useCandles(id: number | null, interval: Interval) {
  const [state, setState] = useState<State>({ bars: [], loading: false, error: null, exhausted: false, version: 0 });
  const oldestRef = useRef<Date | null>(null);
  const busy = useRef(false);
  const key = `${id}:${interval}`;
  const keyRef = useRef(key);
  keyRef.current = key;

  useEffect(() => {
    if (!id) return;
    let gone = false;
    busy.current = true;
    oldestRef.current = null;
    setState({ bars: [], loading: true, error: null, exhausted: false, version: 0 });
    const end = new Date();
    fetchSpan(id, interval, new Date(end.getTime() - SPAN_MS[interval]), end)
      .then((bars) => {
        if (gone) return;
        oldestRef.current = new Date(end.getTime() - SPAN_MS[interval]);
        setState((s) => ({ bars, loading: false, error: null, exhausted: false, version: s.version + 1 }));
      })
      .catch((error: Error) => !gone && setState((s) => ({ ...s, loading: false, error })))
      .finally(() => {
        busy.current = false;
      });
    return () => {
      gone = true;
    };
  }, [id, interval]);

  const loadOlder = useCallback(async () => {
    if (!id || busy.current || state.exhausted || !oldestRef.current) return;
    busy.current = true;
    const started = key;
    setState((s) => ({ ...s, loading: true }));
    try {
      let older: Bar[] = [];
      let end = oldestRef.current;
      for (let empty = 0; empty < 3 && older.length === 0; empty++) {
        const start = new Date(end.getTime() - SPAN_MS[interval]);
        older = await fetchSpan(id, interval, start, end);
        end = start;
      }
      if (keyRef.current !== started) return;
      oldestRef.current = end;
      setState((s) => ({ bars: mergeBars(older, s.bars), loading: false, error: null, exhausted: older.length === 0, version: s.version + 1 }));
    } catch (error) {
      if (keyRef.current === started) setState((s) => ({ ...s, loading: false, error: error as Error }));
    } finally {
      busy.current = false;
    }
  }, [id, interval, key, state.exhausted]);

  return { ...state, loadOlder };
}
