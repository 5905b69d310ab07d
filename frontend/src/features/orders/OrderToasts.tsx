/** Toasts for background order events (filled, rejected, cancelled) linking to the order. */
import { useEffect } from 'react';
import { useNavigate } from 'react-router';
import { toast } from 'sonner';
import { onOrderUpdate } from '@/features/live/cache';
import { toastFor } from './status';

export function OrderToasts() {
  const navigate = useNavigate();
  useEffect(
    () =>
      onOrderUpdate((order, previous) => {
        const t = toastFor(order, previous);
        if (!t) return;
        const opts = { id: `order-${order.id}`, action: { label: 'View', onClick: () => navigate(`/orders?order=${order.id}`) } };
        if (t.kind === 'success') toast.success(t.text, opts);
        else if (t.kind === 'error') toast.error(t.text, opts);
        else toast.info(t.text, opts);
      }),
    [navigate],
  );
  return null;
}
