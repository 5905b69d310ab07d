/** Typed API errors: every non-2xx answer becomes one of these, so screens can show each where it
 * belongs (field errors beside fields, a risk refusal in the ticket, a halted banner, ...). */

export interface ErrorBody {
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** 400 validation_error: `fields` maps a request field to its message. */
export class ValidationError extends ApiError {
  get fields(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.details)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
    return out;
  }
}

/** 401: the session is not (or no longer) valid. */
export class UnauthorizedError extends ApiError {}
export class ForbiddenError extends ApiError {}
export class NotFoundError extends ApiError {}

/** 409 conflict: a duplicate order names the first one (duplicate_of or order_id). */
export class ConflictError extends ApiError {
  get firstOrderId(): string | null {
    const id = this.details.duplicate_of ?? this.details.order_id;
    return typeof id === 'string' ? id : null;
  }
}

/** 422 risk_rejected: details name the rule and its numbers (limit, requested, current). */
export class RiskRejectedError extends ApiError {
  get rule(): string {
    return String(this.details.rule ?? this.code);
  }
}

/** 423 trading_halted (or a 503 with that code). */
export class HaltedError extends ApiError {}

/** 429 rate_limited: `retryAfter` seconds from the Retry-After header. */
export class RateLimitedError extends ApiError {
  readonly retryAfter: number | null;
  constructor(status: number, code: string, message: string, details: Record<string, unknown>, retryAfter: number | null) {
    super(status, code, message, details);
    this.retryAfter = retryAfter;
  }
}

/** The server could not be reached (offline, DNS, CORS, aborted). */
export class NetworkError extends ApiError {
  constructor(message: string) {
    super(0, 'network_error', message);
  }
}

export function parseRetryAfter(header: string | null, now: number = Date.now()): number | null {
  if (!header) return null;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs));
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The typed error for a response status and its JSON body. */
export function toApiError(status: number, body: ErrorBody | null, retryAfterHeader: string | null = null): ApiError {
  const code = body?.error?.code ?? 'error';
  const message = body?.error?.message ?? `request failed (${status})`;
  const details = (body?.error?.details ?? {}) as Record<string, unknown>;
  switch (true) {
    case status === 400:
      return new ValidationError(status, code, message, details);
    case status === 401:
      return new UnauthorizedError(status, code, message, details);
    case status === 403:
      return new ForbiddenError(status, code, message, details);
    case status === 404:
      return new NotFoundError(status, code, message, details);
    case status === 409:
      return new ConflictError(status, code, message, details);
    case status === 423 || code === 'trading_halted':
      return new HaltedError(status, code, message, details);
    case status === 422 && code === 'risk_rejected':
      return new RiskRejectedError(status, code, message, details);
    case status === 422:
      return new ValidationError(status, code, message, details);
    case status === 429:
      return new RateLimitedError(status, code, message, details, parseRetryAfter(retryAfterHeader));
    default:
      return new ApiError(status, code, message, details);
  }
}
