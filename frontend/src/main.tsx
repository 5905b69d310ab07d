import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClientProvider } from '@tanstack/react-query';
import { RouterProvider } from 'react-router';
import { queryClient } from '@/api/queryClient';
import { router } from '@/app/router';
import { warmStart } from '@/features/watchlist/warm';
import { isLoggedIn, useAuthStore } from '@/stores/auth';
import { applyTheme, useThemeStore } from '@/stores/theme';
import '@/features/auth/session'; // installs the logout handler used by the API client
import './index.css';

// a session kept from before starts like a login: socket and watchlist before the first render
if (isLoggedIn(useAuthStore.getState())) warmStart();

function App() {
  const theme = useThemeStore((s) => s.theme);
  useEffect(() => applyTheme(theme), [theme]);
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
