export default function Header() {
  return <header className="h-11 shrink-0 border-b border-line bg-surface" data-testid="header" />;
}
