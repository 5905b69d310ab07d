/** Placeholder: the Trades page (built by the second frontend helper; see frontend/README.md). */
export default function TradesPage() {
  return (
    <section className="p-4" data-testid="trades-page">
      <h1 className="text-base font-semibold">Trades</h1>
      <p className="text-muted">Coming soon.</p>
    </section>
  );
}
