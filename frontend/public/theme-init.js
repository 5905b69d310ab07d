// Applies the persisted theme before first paint (see src/stores/theme.ts). External so a
// `script-src 'self'` CSP holds.
try {
  var saved = JSON.parse(localStorage.getItem('tradingapp.theme') || '{}').state;
  var dark = saved && saved.theme ? saved.theme === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches;
  if (dark) document.documentElement.classList.add('dark');
} catch (e) {
  /* storage unavailable: light theme */
}
