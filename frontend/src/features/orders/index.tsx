/** /orders: the full orders book. */
import { OrdersPanel } from './OrdersPanel';

export default function OrdersPage() {
  return (
    <section className="flex h-full min-h-0 flex-col bg-surface" data-testid="orders-page">
      <OrdersPanel />
    </section>
  );
}
