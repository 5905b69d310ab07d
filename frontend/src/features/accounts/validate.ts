/** Broker account forms, pure: the same rules as the server (tradingapp/services/broker_accounts.py)
 * so most mistakes are shown beside their field before anything is sent, and the request body
 * built from the inputs (empty inputs are left out). */
import { ValidationError } from '@/api/errors';

export type Values = Record<string, string>;
export type Errors = Record<string, string>;

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
export const LENGTHS: Record<string, [number, number]> = {
  app_key: [8, 128],
  secret_key: [8, 256],
  md_app_key: [8, 128],
  md_secret_key: [8, 256],
  client_id: [1, 64],
};
export const LABEL_MAX = 64;
/** The inputs that hold secrets: write-only, cleared after every submit. */
export const SECRET_FIELDS = ['secret_key', 'md_secret_key'] as const;

function checkCredential(name: string, value: string, errors: Errors): void {
  const [low, high] = LENGTHS[name];
  if (value.length < low || value.length > high) errors[name] = `must be ${low} to ${high} characters`;
  else if (!VISIBLE_ASCII.test(value)) errors[name] = 'must be printable ASCII without spaces';
}

function present(values: Values, name: string): string | null {
  const v = values[name] ?? '';
  return v === '' ? null : v;
}

export interface Checked<B> {
  body: B | null;
  errors: Errors;
}

export interface LinkBody {
  broker: 'xts';
  app_key: string;
  secret_key: string;
  label?: string;
  client_id?: string;
  md_app_key?: string;
  md_secret_key?: string;
}

/** Linking: app_key and secret_key required; the market-data pair together or not at all. */
export function checkLink(values: Values): Checked<LinkBody> {
  const errors: Errors = {};
  const body: Record<string, string> = { broker: 'xts' };
  const label = (values.label ?? '').trim();
  if (label.length > LABEL_MAX) errors.label = `must be at most ${LABEL_MAX} characters`;
  else if (label) body.label = label;
  for (const name of ['app_key', 'secret_key', 'client_id', 'md_app_key', 'md_secret_key']) {
    const v = present(values, name);
    if (v === null) {
      if (name === 'app_key' || name === 'secret_key') errors[name] = 'required';
      continue;
    }
    checkCredential(name, v, errors);
    body[name] = v;
  }
  if (Boolean(present(values, 'md_app_key')) !== Boolean(present(values, 'md_secret_key')) && !errors.md_secret_key && !errors.md_app_key) {
    errors[present(values, 'md_app_key') ? 'md_secret_key' : 'md_app_key'] = 'give the market-data app key and secret together';
  }
  return Object.keys(errors).length ? { body: null, errors } : { body: body as unknown as LinkBody, errors };
}

export interface ReplaceBody {
  app_key?: string;
  secret_key?: string;
  md_app_key?: string;
  md_secret_key?: string;
}

/** Replacing: a new secret_key and/or md_secret_key, each with its app key when that changed. An
 * account without a market-data app needs md_app_key with md_secret_key. */
export function checkReplace(values: Values, hasMdApp: boolean): Checked<ReplaceBody> {
  const errors: Errors = {};
  const body: Record<string, string> = {};
  for (const name of ['app_key', 'secret_key', 'md_app_key', 'md_secret_key']) {
    const v = present(values, name);
    if (v === null) continue;
    checkCredential(name, v, errors);
    body[name] = v;
  }
  if (body.app_key && !present(values, 'secret_key')) errors.secret_key ??= 'a new app key needs its secret key';
  if (body.md_app_key && !present(values, 'md_secret_key')) errors.md_secret_key ??= 'a new market-data app key needs its secret key';
  if (!present(values, 'secret_key') && !present(values, 'md_secret_key') && !errors.secret_key && !errors.md_secret_key) {
    errors.secret_key = 'give a new secret key and/or a new market-data secret key';
  }
  if (present(values, 'md_secret_key') && !present(values, 'md_app_key') && !hasMdApp) {
    errors.md_app_key ??= 'this account has no market-data app: give its app key too';
  }
  return Object.keys(errors).length ? { body: null, errors } : { body, errors };
}

/** A server 400's details split into field errors (shown beside inputs in `fields`) and the rest
 * (unknown_fields, body: shown above the form). */
export function splitServerErrors(err: unknown, fields: readonly string[]): { fields: Errors; general: string | null } {
  if (!(err instanceof ValidationError)) {
    return { fields: {}, general: err ? (err instanceof Error ? err.message : String(err)) : null };
  }
  const byField: Errors = {};
  const rest: string[] = [];
  for (const [k, v] of Object.entries(err.fields)) {
    if (fields.includes(k)) byField[k] = v;
    else rest.push(k === 'body' ? v : `${k}: ${v}`);
  }
  const general = rest.length ? rest.join('; ') : Object.keys(byField).length ? null : err.message;
  return { fields: byField, general };
}

/** The form's values as text, read once from the form element at submit. */
export function readForm(form: HTMLFormElement): Values {
  const out: Values = {};
  new FormData(form).forEach((v, k) => {
    if (typeof v === 'string') out[k] = v;
  });
  return out;
}

/** Empty every secret input of a form (after a submit, whatever its answer). */
export function clearSecrets(form: HTMLFormElement | null): void {
  if (!form) return;
  for (const name of SECRET_FIELDS) {
    const input = form.elements.namedItem(name);
    if (input instanceof HTMLInputElement) input.value = '';
  }
}
