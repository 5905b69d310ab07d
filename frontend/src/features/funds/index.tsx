/** Placeholder: the Funds page (built by the second frontend helper; see frontend/README.md). */
export default function FundsPage() {
  return (
    <section className="p-4" data-testid="funds-page">
      <h1 className="text-base font-semibold">Funds</h1>
      <p className="text-muted">Coming soon.</p>
    </section>
  );
}
