/** Which instruments the terminal wants, counted per consumer, so two screens showing one
 * instrument share one subscription and the socket re-subscribes everything after a reconnect. */
export type Mode = 'ltp' | 'quote' | 'full';
const RANK: Record<Mode, number> = { ltp: 0, quote: 1, full: 2 };

export class Subscriptions {
  private counts = new Map<number, Map<Mode, number>>();

  /** The effective mode of an instrument: the richest any consumer asked for. */
  modeOf(id: number): Mode | null {
    const modes = this.counts.get(id);
    if (!modes || modes.size === 0) return null;
    let best: Mode = 'ltp';
    for (const m of modes.keys()) if (RANK[m] > RANK[best]) best = m;
    return best;
  }

  /** Add consumers; returns the instruments whose effective mode changed (to send). */
  add(ids: readonly number[], mode: Mode): number[] {
    const changed: number[] = [];
    for (const id of new Set(ids)) {
      const before = this.modeOf(id);
      const modes = this.counts.get(id) ?? new Map<Mode, number>();
      modes.set(mode, (modes.get(mode) ?? 0) + 1);
      this.counts.set(id, modes);
      if (this.modeOf(id) !== before) changed.push(id);
    }
    return changed;
  }

  /** Remove consumers; returns {unsubscribe: ids nobody wants, downgrade: ids whose mode fell}. */
  remove(ids: readonly number[], mode: Mode): { unsubscribe: number[]; changed: number[] } {
    const unsubscribe: number[] = [];
    const changed: number[] = [];
    for (const id of new Set(ids)) {
      const modes = this.counts.get(id);
      if (!modes?.has(mode)) continue;
      const before = this.modeOf(id);
      const n = (modes.get(mode) ?? 1) - 1;
      if (n <= 0) modes.delete(mode);
      else modes.set(mode, n);
      if (modes.size === 0) {
        this.counts.delete(id);
        unsubscribe.push(id);
      } else if (this.modeOf(id) !== before) changed.push(id);
    }
    return { unsubscribe, changed };
  }

  /** Every wanted instrument grouped by effective mode (for re-subscribing). */
  byMode(ids?: readonly number[]): Map<Mode, number[]> {
    const out = new Map<Mode, number[]>();
    for (const id of ids ?? this.counts.keys()) {
      const m = this.modeOf(id);
      if (!m) continue;
      out.set(m, [...(out.get(m) ?? []), id]);
    }
    return out;
  }

  get size(): number {
    return this.counts.size;
  }
}
