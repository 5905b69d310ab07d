export function OrderToasts() {
  return null;
}
