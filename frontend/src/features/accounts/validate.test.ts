import { describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '@/api/errors';
import { checkLink, checkReplace, clearSecrets, readForm, splitServerErrors } from './validate';

const KEY = 'abcd1234';
const SECRET = 'S3cret-value!';

describe('checkLink', () => {
  it('builds the body from filled inputs only', () => {
    const r = checkLink({ label: '  Main  ', app_key: KEY, secret_key: SECRET, client_id: '', md_app_key: '', md_secret_key: '' });
    expect(r.errors).toEqual({});
    expect(r.body).toEqual({ broker: 'xts', label: 'Main', app_key: KEY, secret_key: SECRET });
  });
  it('requires the app key and secret', () => {
    expect(checkLink({}).errors).toEqual({ app_key: 'required', secret_key: 'required' });
    expect(checkLink({}).body).toBeNull();
  });
  it('checks lengths and characters like the server', () => {
    const r = checkLink({ app_key: 'short', secret_key: 'has a space', client_id: 'x'.repeat(65) });
    expect(r.errors).toEqual({
      app_key: 'must be 8 to 128 characters',
      secret_key: 'must be printable ASCII without spaces',
      client_id: 'must be 1 to 64 characters',
    });
    expect(checkLink({ app_key: KEY, secret_key: SECRET, label: 'x'.repeat(65) }).errors.label).toMatch(/at most 64/);
  });
  it('wants the market-data key and secret together', () => {
    expect(checkLink({ app_key: KEY, secret_key: SECRET, md_app_key: KEY }).errors).toEqual({
      md_secret_key: 'give the market-data app key and secret together',
    });
    expect(checkLink({ app_key: KEY, secret_key: SECRET, md_secret_key: SECRET }).errors).toEqual({
      md_app_key: 'give the market-data app key and secret together',
    });
    expect(checkLink({ app_key: KEY, secret_key: SECRET, md_app_key: KEY, md_secret_key: SECRET }).body).toMatchObject({
      md_app_key: KEY,
      md_secret_key: SECRET,
    });
  });
});

describe('checkReplace', () => {
  it('accepts a new secret alone, or with its app key', () => {
    expect(checkReplace({ secret_key: SECRET }, false)).toEqual({ body: { secret_key: SECRET }, errors: {} });
    expect(checkReplace({ app_key: KEY, secret_key: SECRET }, false).body).toEqual({ app_key: KEY, secret_key: SECRET });
  });
  it('wants some secret', () => {
    expect(checkReplace({ app_key: '', secret_key: '' }, true).errors).toEqual({
      secret_key: 'give a new secret key and/or a new market-data secret key',
    });
  });
  it('refuses a new app key without its secret', () => {
    expect(checkReplace({ app_key: KEY }, false).errors).toEqual({ secret_key: 'a new app key needs its secret key' });
    expect(checkReplace({ md_app_key: KEY, secret_key: SECRET }, true).errors).toEqual({
      md_secret_key: 'a new market-data app key needs its secret key',
    });
  });
  it('needs the market-data app key when the account has none', () => {
    expect(checkReplace({ md_secret_key: SECRET }, false).errors).toEqual({
      md_app_key: 'this account has no market-data app: give its app key too',
    });
    expect(checkReplace({ md_secret_key: SECRET }, true).body).toEqual({ md_secret_key: SECRET });
  });
});

describe('server errors', () => {
  it('puts known fields beside inputs and the rest above the form', () => {
    const err = new ValidationError(400, 'validation_error', 'invalid broker account; nothing was stored', {
      app_key: 'must be 8 to 128 characters',
      unknown_fields: 'role',
    });
    expect(splitServerErrors(err, ['app_key', 'secret_key'])).toEqual({
      fields: { app_key: 'must be 8 to 128 characters' },
      general: 'unknown_fields: role',
    });
  });
  it('shows a non-field refusal as the general message', () => {
    const err = new ConflictError(409, 'conflict', 'an account of this broker is already linked', {});
    expect(splitServerErrors(err, ['app_key'])).toEqual({ fields: {}, general: 'an account of this broker is already linked' });
    expect(splitServerErrors(null, [])).toEqual({ fields: {}, general: null });
  });
});

describe('form helpers', () => {
  it('reads the inputs and clears only the secrets', () => {
    const form = document.createElement('form');
    form.innerHTML =
      '<input name="app_key" value="abcd1234"><input name="secret_key" type="password" value="topsecret1"><input name="md_secret_key" type="password" value="topsecret2">';
    expect(readForm(form)).toEqual({ app_key: 'abcd1234', secret_key: 'topsecret1', md_secret_key: 'topsecret2' });
    clearSecrets(form);
    expect(readForm(form)).toEqual({ app_key: 'abcd1234', secret_key: '', md_secret_key: '' });
  });
});
