/** Placeholder: the Admin page (built by the second frontend helper; see frontend/README.md). */
export default function AdminPage() {
  return (
    <section className="p-4" data-testid="admin-page">
      <h1 className="text-base font-semibold">Admin</h1>
      <p className="text-muted">Coming soon.</p>
    </section>
  );
}
