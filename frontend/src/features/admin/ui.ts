/** Class names shared by the admin tabs (theme tokens only). */
export const TH = 'px-2 py-1.5 text-xs font-medium text-muted whitespace-nowrap text-left';
export const TD = 'px-2 py-1.5 align-top';
export const SELECT =
  'h-8 rounded border border-line bg-surface px-1 text-fg outline-none focus:border-accent focus-visible:ring-1 focus-visible:ring-accent disabled:opacity-50';
