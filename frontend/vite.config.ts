/// <reference types="vitest/config" />
import { defineConfig, loadEnv } from 'vite';
import react from '@vitejs/plugin-react';
import tailwindcss from '@tailwindcss/vite';
import { fileURLToPath } from 'node:url';

// Build-time URLs: VITE_API_URL / VITE_WEBSOCKET_URL, or the deployment document's
// REACT_APP_API_URL / REACT_APP_WEBSOCKET_URL (both prefixes are exposed to the app).
// `npm run dev` proxies /api to DEV_BACKEND (default http://127.0.0.1:5000).
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, process.cwd(), '');
  const backend = env.DEV_BACKEND || 'http://127.0.0.1:5000';
  return {
    plugins: [react(), tailwindcss()],
    resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
    envPrefix: ['VITE_', 'REACT_APP_'],
    server: {
      proxy: {
        '/api': { target: backend, changeOrigin: false },
        '/health': { target: backend },
      },
    },
    build: {
      target: 'es2022',
      sourcemap: false,
      chunkSizeWarningLimit: 600,
    },
    test: {
      environment: 'jsdom',
      globals: false,
      setupFiles: ['./src/test/setup.ts'],
      include: ['src/**/*.test.{ts,tsx}'],
    },
  };
});
