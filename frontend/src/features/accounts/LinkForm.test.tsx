import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LinkForm } from './LinkForm';

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function renderForm() {
  const client = new QueryClient({ defaultOptions: { mutations: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <LinkForm />
    </QueryClientProvider>,
  );
  return client;
}

const input = (id: string) => screen.getByTestId(id) as HTMLInputElement;

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('LinkForm', () => {
  it('shows client-side errors beside their fields and sends nothing', async () => {
    const fetch = vi.fn();
    vi.stubGlobal('fetch', fetch);
    renderForm();
    await userEvent.type(input('accounts-link-app-key'), 'short');
    await userEvent.type(input('accounts-link-secret-key'), 'a secret with spaces');
    await userEvent.click(screen.getByTestId('accounts-link-submit'));
    expect(screen.getByTestId('accounts-link-app-key-error')).toHaveTextContent('must be 8 to 128 characters');
    expect(screen.getByTestId('accounts-link-secret-key-error')).toHaveTextContent('printable ASCII');
    expect(input('accounts-link-app-key')).toHaveAttribute('aria-invalid', 'true');
    expect(input('accounts-link-secret-key').value).toBe('');
    expect(fetch).not.toHaveBeenCalled();
  });

  it('posts the filled fields, clears the secrets, and puts a 400 beside its field', async () => {
    const fetch = vi.fn().mockResolvedValue(
      answer(400, { error: { code: 'validation_error', message: 'invalid broker account; nothing was stored', details: { client_id: 'must be printable ASCII without spaces', unknown_fields: 'x' } } }),
    );
    vi.stubGlobal('fetch', fetch);
    renderForm();
    await userEvent.type(input('accounts-link-app-key'), 'abcd1234');
    await userEvent.type(input('accounts-link-secret-key'), 'S3cret-value!');
    await userEvent.type(input('accounts-link-client-id'), 'CL01');
    await userEvent.click(screen.getByTestId('accounts-link-submit'));

    await waitFor(() => expect(screen.getByTestId('accounts-link-client-id-error')).toHaveTextContent('must be printable ASCII without spaces'));
    expect(screen.getByTestId('accounts-link-error')).toHaveTextContent('unknown_fields: x');
    const [url, init] = fetch.mock.calls[0];
    expect(String(url)).toMatch(/\/api\/v1\/broker-accounts$/);
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body)).toEqual({ broker: 'xts', app_key: 'abcd1234', secret_key: 'S3cret-value!', client_id: 'CL01' });
    // the secret is gone from the input; the app key stays for the retry
    expect(input('accounts-link-secret-key').value).toBe('');
    expect(input('accounts-link-secret-key').type).toBe('password');
    expect(input('accounts-link-app-key').value).toBe('abcd1234');
  });

  it('keeps no secret in the query cache after a link', async () => {
    const account = { id: 'a1', broker: 'xts', label: '', app_key_masked: '****1234', has_secret: true, client_id: null, md_app_key_masked: null, has_md_secret: false, active: true, created_at: '2026-03-05T04:00:00Z', updated_at: '2026-03-05T04:00:00Z' };
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(answer(201, account)));
    const client = renderForm();
    await userEvent.type(input('accounts-link-app-key'), 'abcd1234');
    await userEvent.type(input('accounts-link-secret-key'), 'S3cret-value!');
    await userEvent.click(screen.getByTestId('accounts-link-submit'));
    await waitFor(() => expect(input('accounts-link-app-key').value).toBe(''));
    const mutations = client.getMutationCache().getAll();
    expect(JSON.stringify(mutations.map((m) => m.state))).not.toContain('S3cret-value!');
  });
});
