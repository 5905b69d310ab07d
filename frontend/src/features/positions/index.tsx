/** Placeholder: the Positions page (built by the second frontend helper; see frontend/README.md). */
export default function PositionsPage() {
  return (
    <section className="p-4" data-testid="positions-page">
      <h1 className="text-base font-semibold">Positions</h1>
      <p className="text-muted">Coming soon.</p>
    </section>
  );
}
