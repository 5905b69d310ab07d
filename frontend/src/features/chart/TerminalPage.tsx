export default function TerminalPage(_props: { home?: boolean }) {
  return <section data-testid="terminal-page" className="p-4">Chart</section>;
}
