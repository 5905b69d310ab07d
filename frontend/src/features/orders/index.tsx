export default function OrdersPage() {
  return <section data-testid="orders-page" className="p-4">Orders</section>;
}
