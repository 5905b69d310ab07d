/** Placeholder: the Accounts page (built by the second frontend helper; see frontend/README.md). */
export default function AccountsPage() {
  return (
    <section className="p-4" data-testid="accounts-page">
      <h1 className="text-base font-semibold">Accounts</h1>
      <p className="text-muted">Coming soon.</p>
    </section>
  );
}
