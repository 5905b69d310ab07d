/** One line for an API refusal, naming what the typed error carries (rule and numbers, retry
 * time, the first order of a duplicate, field messages). Used where an action's answer is shown
 * in a dialog or toast rather than beside a form field. */
import { ConflictError, HaltedError, RateLimitedError, RiskRejectedError, ValidationError } from '@/api/errors';

function numbers(details: Record<string, unknown>): string {
  const parts = ['limit', 'requested', 'current']
    .filter((k) => details[k] !== undefined && details[k] !== null)
    .map((k) => `${k} ${String(details[k])}`);
  return parts.join(', ');
}

export function describeError(err: unknown): string {
  if (err instanceof RiskRejectedError) {
    const n = numbers(err.details);
    return `Refused by risk rule ${err.rule}: ${err.message}${n ? ` (${n})` : ''}`;
  }
  if (err instanceof HaltedError) return `Trading is halted: ${err.message}`;
  if (err instanceof RateLimitedError) {
    return err.retryAfter !== null ? `Too many requests: retry in ${err.retryAfter} s` : `Too many requests: ${err.message}`;
  }
  if (err instanceof ConflictError) {
    return err.firstOrderId ? `${err.message} (order ${err.firstOrderId})` : err.message;
  }
  if (err instanceof ValidationError) {
    const fields = Object.entries(err.fields).map(([k, v]) => `${k}: ${v}`);
    return fields.length ? `${err.message}: ${fields.join('; ')}` : err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
