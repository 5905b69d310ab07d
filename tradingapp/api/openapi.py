"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of the REST API.

Kept next to the routes and checked by tests/test_openapi.py, which fails when a registered
route is missing here, so the document cannot drift from the code.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("openapi", __name__)

DECIMAL = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["101.25"]}
NULLABLE_DECIMAL = {"anyOf": [DECIMAL, {"type": "null"}]}
TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}


def _obj(props: dict, required: list[str] | None = None) -> dict:
    # None: every property is required; [] (a PATCH body, overrides): none is.
    return {"type": "object", "properties": props, "required": list(props) if required is None else required}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> dict:
    return _obj({"items": {"type": "array", "items": _ref(item)}, "next_cursor": {"type": ["string", "null"]}})


STATUSES = [
    "PENDING",
    "SUBMITTED",
    "OPEN",
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCEL_PENDING",
    "CANCELLED",
    "MODIFY_PENDING",
    "REJECTED",
    "EXPIRED",
]

SCHEMAS = {
    "Error": _obj(
        {"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}})}
    ),
    "User": _obj(
        {
            "id": UUID,
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": {"enum": ["admin", "trader", "viewer"]},
        }
    ),
    "Tokens": _obj(
        {
            "access_token": {"type": "string"},
            "refresh_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
        }
    ),
    "Instrument": _obj(
        {
            "id": {"type": "integer"},
            "exchange_segment": {"type": "string"},
            "exchange_instrument_id": {"type": "integer"},
            "symbol": {"type": "string"},
            "name": {"type": "string"},
            "series": {"type": "string"},
            "lot_size": {"type": "integer"},
            "tick_size": DECIMAL,
            "expiry": {"type": ["string", "null"], "format": "date"},
            "strike": NULLABLE_DECIMAL,
            "option_type": {"type": ["string", "null"]},
            "freeze_quantity": {"type": ["integer", "null"]},
            "active": {
                "type": "boolean",
                "description": "false: no longer in the broker's instrument master; no new orders",
            },
        }
    ),
    "NewOrder": _obj(
        {
            "instrument_id": {"type": "integer"},
            "side": {"enum": ["BUY", "SELL"]},
            "quantity": {"type": "integer", "minimum": 1},
            "order_type": {"enum": ["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]},
            "limit_price": DECIMAL,
            "stop_price": DECIMAL,
            "product": {"enum": ["MIS", "NRML", "CNC"]},
            "time_in_force": {"enum": ["DAY", "IOC"]},
            "client_order_id": {"type": "string", "maxLength": 64},
        },
        ["instrument_id", "side", "quantity", "order_type"],
    ),
    "Order": _obj(
        {
            "id": UUID,
            "client_order_id": {"type": ["string", "null"]},
            "broker_order_id": {"type": ["string", "null"]},
            "instrument_id": {"type": "integer"},
            "symbol": {"type": "string"},
            "exchange_segment": {"type": "string"},
            "side": {"enum": ["BUY", "SELL"]},
            "quantity": {"type": "integer"},
            "filled_quantity": {"type": "integer"},
            "average_price": NULLABLE_DECIMAL,
            "order_type": {"type": "string"},
            "limit_price": NULLABLE_DECIMAL,
            "stop_price": NULLABLE_DECIMAL,
            "product": {"type": "string"},
            "time_in_force": {"type": "string"},
            "status": {"enum": STATUSES},
            "reject_reason": {"type": ["string", "null"]},
            "created_at": TIME,
            "updated_at": TIME,
        }
    ),
    "OrderEvent": _obj(
        {
            "id": {"type": "integer"},
            "order_id": UUID,
            "ts": TIME,
            "actor": {"enum": ["user", "system", "broker"]},
            "actor_id": {"type": ["string", "null"]},
            "event": {"type": "string"},
            "from_status": {"type": ["string", "null"]},
            "to_status": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "details": {"type": "object"},
        }
    ),
    "Trade": _obj(
        {
            "id": UUID,
            "order_id": UUID,
            "instrument_id": {"type": "integer"},
            "side": {"enum": ["BUY", "SELL"]},
            "quantity": {"type": "integer"},
            "price": DECIMAL,
            "traded_at": TIME,
        }
    ),
    "Position": _obj(
        {
            "instrument_id": {"type": "integer"},
            "symbol": {"type": "string"},
            "product": {"type": "string"},
            "quantity": {"type": "integer"},
            "average_price": DECIMAL,
            "last_price": NULLABLE_DECIMAL,
            "realized_pnl": DECIMAL,
            "unrealized_pnl": NULLABLE_DECIMAL,
        }
    ),
    "Candle": _obj(
        {"ts": TIME, "open": DECIMAL, "high": DECIMAL, "low": DECIMAL, "close": DECIMAL, "volume": {"type": "integer"}}
    ),
    "Quote": _obj(
        {
            "instrument_id": {"type": "integer"},
            "ltp": DECIMAL,
            "ltq": {"type": "string"},
            "bid": DECIMAL,
            "ask": DECIMAL,
            "bid_qty": {"type": "string"},
            "ask_qty": {"type": "string"},
            "open": DECIMAL,
            "high": DECIMAL,
            "low": DECIMAL,
            "close": {
                **DECIMAL,
                "description": "the previous session's close, the reference of the day's change: change = ltp - close,"
                " % change = change / close x 100 (XTS: the touchline's Close, from which XTS computes its own"
                " PercentChange; paper feed: the last price of the previous UTC day the feed ran, else its opening"
                " price)",
            },
            "volume": {"type": "string"},
            "ts": TIME,
            "stale": {"type": "boolean", "description": "the feed has been silent past QUOTE_STALE_AFTER"},
        },
        ["instrument_id", "ltp", "ts", "stale"],
    ),
}

ERRORS = {
    code: {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
    for code, text in {
        "400": "validation_error",
        "401": "unauthorized",
        "403": "forbidden",
        "404": "not_found",
        "409": "conflict",
        "422": "risk_rejected (details name the rule and the numbers)",
        "423": "trading_halted (kill switch)",
        "429": "rate_limited",
        "503": "unavailable",
    }.items()
}


def _op(
    summary: str,
    ok: str,
    schema: dict | None = None,
    body: str | None = None,
    auth: bool = True,
    params: list[str] | None = None,
    errors: tuple[str, ...] = ("400", "401"),
) -> dict:
    responses = {ok: {"description": "success"}}
    if schema is not None:
        responses[ok]["content"] = {"application/json": {"schema": schema}}
    responses.update({code: ERRORS[code] for code in errors})
    op = {"summary": summary, "responses": responses}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = [
            {
                "name": p.strip("{}"),
                "in": "path" if p.startswith("{") else "query",
                "required": p.startswith("{"),
                "schema": {"type": "string"},
            }
            for p in params
        ]
    if not auth:
        op["security"] = []
    return op


ANY = {"type": "object"}
PATHS = {
    "/health": {"get": _op("Liveness", "200", ANY, auth=False, errors=())},
    "/ready": {
        "get": _op(
            "Readiness of Postgres, Redis and RabbitMQ (503 names the one down); stale quotes are reported, not failed",
            "200",
            _obj(
                {
                    "status": {"type": "string"},
                    "checks": {"type": "object"},
                    "stale_quotes": {
                        "type": ["object", "null"],
                        "properties": {
                            "count": {"type": "integer"},
                            "instrument_ids": {"type": "array", "items": {"type": "integer"}},
                        },
                    },
                }
            ),
            auth=False,
            errors=(),
        )
    },
    "/metrics": {"get": _op("Prometheus metrics (text format)", "200", auth=False, errors=())},
    "/api/v1/openapi.json": {"get": _op("This document", "200", ANY, auth=False, errors=())},
    "/api/v1/auth/register": {
        "post": _op(
            "Create a trader account", "201", _ref("User"), "Register", auth=False, errors=("400", "403", "409")
        )
    },
    "/api/v1/auth/login": {
        "post": _op("Log in", "200", _ref("Tokens"), "Login", auth=False, errors=("400", "401", "429"))
    },
    "/api/v1/auth/refresh": {"post": _op("New access token (refresh token as Bearer)", "200", ANY)},
    "/api/v1/auth/logout": {"post": _op("Revoke this session's tokens", "204")},
    "/api/v1/auth/me": {"get": _op("The caller", "200", _ref("User"))},
    "/api/v1/instruments": {
        "get": _op(
            "Search instruments",
            "200",
            _page("Instrument"),
            params=["q", "exchange_segment", "include_inactive", "limit", "cursor"],
        )
    },
    "/api/v1/instruments/{instrument_id}": {
        "get": _op("One instrument", "200", _ref("Instrument"), params=["{instrument_id}"], errors=("401", "404"))
    },
    "/api/v1/instruments/{instrument_id}/candles": {
        "get": _op(
            "OHLCV candles of [start, end), oldest first (interval 1m|5m|15m|30m|1h|1d, default 1m; end defaults"
            " to now, start to a span per interval; at most 5000 candles, 400 past it; 1d is the session day)",
            "200",
            _obj({"items": {"type": "array", "items": _ref("Candle")}}),
            params=["{instrument_id}", "interval", "start", "end"],
            errors=("400", "401", "404"),
        )
    },
    "/api/v1/orders": {
        "post": _op(
            "Place an order (202 new; 200 the earlier order of the same client_order_id or Idempotency-Key)",
            "202",
            _ref("Order"),
            "NewOrder",
            errors=("400", "401", "403", "409", "422", "423", "429"),
        ),
        "get": _op(
            "The caller's orders, newest first",
            "200",
            _page("Order"),
            params=["status", "instrument_id", "limit", "cursor"],
        ),
        "delete": _op(
            "Cancel every working order of the caller (optionally of one instrument)",
            "202",
            _obj({"cancelled": {"type": "array", "items": UUID}}),
            params=["instrument_id"],
            errors=("400", "401", "403"),
        ),
    },
    "/api/v1/orders/{order_id}": {
        "get": _op("One order", "200", _ref("Order"), params=["{order_id}"], errors=("401", "404")),
        "patch": _op(
            "Modify a working order (quantity is the new total); MODIFY_PENDING until the broker answers",
            "202",
            _ref("Order"),
            "ModifyOrder",
            params=["{order_id}"],
            errors=("400", "401", "403", "404", "409", "422", "423", "429"),
        ),
        "delete": _op(
            "Request cancellation (again while CANCEL_PENDING re-sends it)",
            "202",
            _ref("Order"),
            params=["{order_id}"],
            errors=("401", "403", "404", "409"),
        ),
    },
    "/api/v1/orders/{order_id}/events": {
        "get": _op(
            "The order's audit trail",
            "200",
            _obj({"items": {"type": "array", "items": _ref("OrderEvent")}}),
            params=["{order_id}"],
            errors=("401", "404"),
        )
    },
    "/api/v1/trades": {
        "get": _op("The caller's fills, newest first", "200", _page("Trade"), params=["order_id", "limit", "cursor"])
    },
    "/api/v1/positions": {
        "get": _op(
            "Positions: view=net (default; held or with P&L, marked to the last price) or view=day (today's "
            "buys, sells and realized P&L per position; the session day is SESSION_TIMEZONE's)",
            "200",
            _obj({"items": {"type": "array", "items": {"anyOf": [_ref("Position"), _ref("DayPosition")]}}}),
            params=["view"],
        ),
        "delete": _op(
            "Close every position by market orders (sliced by freeze quantity); skipped names any refused",
            "202",
            _obj({"orders": {"type": "array", "items": _ref("Order")}, "skipped": {"type": "array", "items": ANY}}),
            errors=("401", "403"),
        ),
    },
    "/api/v1/quotes": {
        "get": _op(
            "Latest cached quotes (a stale or missing one from the broker's REST quote when it has one)",
            "200",
            _obj(
                {
                    "items": {"type": "array", "items": _ref("Quote")},
                    "missing": {"type": "array", "items": {"type": "integer"}},
                }
            ),
            params=["instrument_ids"],
        )
    },
}

PATHS.update(
    {
        "/api/v1/funds": {
            "get": _op("Cash, used margin, available funds and P&L (margin model in the README)", "200", _ref("Funds"))
        },
        "/api/v1/account": {
            "get": _op(
                "The caller's effective trading state (stricter of global and own) and risk limits",
                "200",
                _ref("Account"),
            )
        },
        "/api/v1/admin/users": {
            "get": _op(
                "Every user with role and active (admin)",
                "200",
                _obj({"items": {"type": "array", "items": _ref("AdminUser")}}),
                errors=("401", "403"),
            )
        },
        "/api/v1/admin/users/{user_id}": {
            "patch": _op(
                "Change a user's role and/or active; deactivating revokes their sessions at once; an admin "
                "cannot deactivate or demote themself (409)",
                "200",
                _ref("AdminUser"),
                "UserChange",
                params=["{user_id}"],
                errors=("400", "401", "403", "404", "409"),
            )
        },
        "/api/v1/admin/risk-limits": {
            "get": _op(
                "Built-in defaults, effective global limits and per-user overrides",
                "200",
                _ref("RiskLimitsView"),
                errors=("401", "403"),
            ),
            "put": _op(
                "Change global limits and per-user overrides: a null value removes that override (a global one "
                "falls back to the built-in default), users.{id}: null removes all of a user's overrides; any "
                "invalid field is a 400 naming it, and nothing changes",
                "200",
                _ref("RiskLimitsView"),
                "RiskLimitsChange",
                errors=("400", "401", "403"),
            ),
        },
        "/api/v1/admin/kill-switch": {
            "get": _op("The global trading state and every user not ACTIVE", "200", ANY, errors=("401", "403")),
            "post": _op(
                "Set the trading state of everyone (no user_id) or one user: {active: true} halts (HALTED), "
                "{active: false} resumes (ACTIVE), or {state: ACTIVE|REDUCING|HALTED}. HALTED refuses new orders "
                "and modifications that add exposure (423); REDUCING passes only orders that shrink a position; "
                "cancels always pass. The effective state is the stricter of global and user",
                "200",
                ANY,
                "TradingStateChange",
                errors=("400", "401", "403", "404"),
            ),
        },
        "/api/v1/admin/audit": {
            "get": _op(
                "Admin changes, newest first (who, when, what, before/after)",
                "200",
                ANY,
                params=["limit"],
                errors=("400", "401", "403"),
            )
        },
    }
)
_LIMIT_PROPS = {
    "max_order_quantity": {"type": "integer", "minimum": 1},
    "max_order_notional": DECIMAL,
    "max_position_quantity": {"type": "integer", "minimum": 1},
    "max_open_orders": {"type": "integer", "minimum": 1},
    "orders_per_second": {"type": "integer", "minimum": 1},
    "order_burst": {"type": "integer", "minimum": 1},
    "max_daily_loss": DECIMAL,
    "max_orders_per_day": {"type": "integer", "minimum": 1},
    "allowed_products": {"type": "array", "items": {"enum": ["MIS", "NRML", "CNC"]}},
    "allowed_segments": {"type": "array", "items": {"type": "string"}},
    "margin_cnc_percent": DECIMAL,
    "margin_nrml_percent": DECIMAL,
    "margin_mis_percent": DECIMAL,
}
_STATE = {"enum": ["ACTIVE", "REDUCING", "HALTED"]}
SCHEMAS.update(
    {
        "RiskLimits": _obj(_LIMIT_PROPS),
        "RiskLimitOverrides": _obj({k: {"anyOf": [v, {"type": "null"}]} for k, v in _LIMIT_PROPS.items()}, []),
        "RiskLimitsView": _obj(
            {
                "defaults": _ref("RiskLimits"),
                "global": _ref("RiskLimits"),
                "users": {"type": "object", "additionalProperties": _ref("RiskLimitOverrides")},
            }
        ),
        "RiskLimitsChange": _obj(
            {
                "global": _ref("RiskLimitOverrides"),
                "users": {
                    "type": "object",
                    "additionalProperties": {"anyOf": [_ref("RiskLimitOverrides"), {"type": "null"}]},
                },
            },
            [],
        ),
        "TradingStateChange": _obj(
            {
                "active": {"type": "boolean"},
                "state": _STATE,
                "user_id": UUID,
                "reason": {"type": "string", "maxLength": 200},
            },
            [],
        ),
        "UserChange": _obj({"role": {"enum": ["admin", "trader", "viewer"]}, "active": {"type": "boolean"}}, []),
        "AdminUser": _obj(
            {
                "id": UUID,
                "email": {"type": "string"},
                "name": {"type": "string"},
                "role": {"enum": ["admin", "trader", "viewer"]},
                "active": {"type": "boolean"},
                "created_at": TIME,
            }
        ),
        "Funds": _obj(
            {
                "cash": DECIMAL,
                "used_margin": DECIMAL,
                "available": DECIMAL,
                "realized_pnl": DECIMAL,
                "unrealized_pnl": DECIMAL,
            }
        ),
        "Account": _obj(
            {
                "user_id": UUID,
                "trading_state": _STATE,
                "user_trading_state": _STATE,
                "global_trading_state": _STATE,
                "state_reason": {"type": ["string", "null"]},
                "session_day": {"type": "string", "format": "date"},
                "orders_today": {"type": "integer"},
                "limits": _ref("RiskLimits"),
            }
        ),
        "DayPosition": _obj(
            {
                "instrument_id": {"type": "integer"},
                "symbol": {"type": "string"},
                "product": {"type": "string"},
                "day": {"type": "string", "format": "date"},
                "buy_quantity": {"type": "integer"},
                "buy_value": DECIMAL,
                "buy_average_price": NULLABLE_DECIMAL,
                "sell_quantity": {"type": "integer"},
                "sell_value": DECIMAL,
                "sell_average_price": NULLABLE_DECIMAL,
                "quantity": {"type": "integer"},
                "realized_pnl": DECIMAL,
                "last_price": NULLABLE_DECIMAL,
            }
        ),
    }
)

SCHEMAS["Register"] = _obj(
    {"email": {"type": "string"}, "password": {"type": "string", "minLength": 10}, "name": {"type": "string"}},
    ["email", "password"],
)
SCHEMAS["ModifyOrder"] = _obj(
    {"quantity": {"type": "integer", "minimum": 1}, "limit_price": DECIMAL, "stop_price": DECIMAL}, []
)
SCHEMAS["Login"] = _obj({"email": {"type": "string"}, "password": {"type": "string"}})


# Linked broker accounts (tradingapp/api/accounts.py): secrets go in, never out.
_CREDENTIAL = {"type": "string", "pattern": r"^[\x21-\x7e]+$"}
PATHS.update(
    {
        "/api/v1/broker-accounts": {
            "get": _op(
                "The caller's active linked broker accounts (app keys masked, secrets never returned)",
                "200",
                _obj({"items": {"type": "array", "items": _ref("BrokerAccount")}}),
                errors=("401",),
            ),
            "post": _op(
                "Link a broker account (its secrets are stored encrypted); one active account per broker (409); "
                "503 when the server has no encryption key",
                "201",
                _ref("BrokerAccount"),
                "NewBrokerAccount",
                errors=("400", "401", "403", "409", "503"),
            ),
        },
        "/api/v1/broker-accounts/{account_id}": {
            "put": _op(
                "Replace the account's secrets: {secret_key, app_key?} and/or {md_secret_key, md_app_key?}",
                "200",
                _ref("BrokerAccount"),
                "BrokerAccountSecrets",
                params=["{account_id}"],
                errors=("400", "401", "403", "404", "503"),
            ),
            "delete": _op(
                "Unlink: the account is deactivated and its secrets erased; orders then use the default account",
                "200",
                _ref("BrokerAccount"),
                params=["{account_id}"],
                errors=("401", "403", "404"),
            ),
        },
    }
)
SCHEMAS.update(
    {
        "BrokerAccount": _obj(
            {
                "id": UUID,
                "broker": {"enum": ["xts"]},
                "label": {"type": "string"},
                "app_key_masked": {"type": "string", "examples": ["****a1b2"]},
                "has_secret": {"type": "boolean"},
                "client_id": {"type": ["string", "null"]},
                "md_app_key_masked": {"type": ["string", "null"]},
                "has_md_secret": {"type": "boolean"},
                "active": {"type": "boolean"},
                "created_at": TIME,
                "updated_at": TIME,
            }
        ),
        "NewBrokerAccount": _obj(
            {
                "broker": {"enum": ["xts"], "default": "xts"},
                "app_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 128},
                "secret_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 256, "writeOnly": True},
                "client_id": {**_CREDENTIAL, "minLength": 1, "maxLength": 64},
                "md_app_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 128},
                "md_secret_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 256, "writeOnly": True},
                "label": {"type": "string", "maxLength": 64},
            },
            ["app_key", "secret_key"],
        ),
        "BrokerAccountSecrets": _obj(
            {
                "app_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 128},
                "secret_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 256, "writeOnly": True},
                "md_app_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 128},
                "md_secret_key": {**_CREDENTIAL, "minLength": 8, "maxLength": 256, "writeOnly": True},
            },
            [],
        ),
    }
)


# Watchlists (tradingapp/api/watchlists.py): several named lists per user, kept on the server.
PATHS.update(
    {
        "/api/v1/watchlists": {
            "get": _op(
                "The caller's watchlists, by position then creation (none: an empty list; nothing is created)",
                "200",
                _obj({"items": {"type": "array", "items": _ref("Watchlist")}}),
                errors=("401",),
            ),
            "post": _op(
                "Create a watchlist: the name is trimmed, 1-40 characters, unique per user ignoring case (409); at"
                " most 10 per user (422)",
                "201",
                _ref("Watchlist"),
                "NewWatchlist",
                errors=("400", "401", "409", "422"),
            ),
        },
        "/api/v1/watchlists/{watchlist_id}": {
            "patch": _op(
                "Rename and/or replace the instruments (instrument_ids in the new order: how a list is reordered);"
                " an unknown or repeated id, or more than 250, is a 400 and nothing changes",
                "200",
                _ref("Watchlist"),
                "WatchlistChange",
                params=["{watchlist_id}"],
                errors=("400", "401", "404", "409"),
            ),
            "delete": _op("Delete a watchlist", "204", params=["{watchlist_id}"], errors=("401", "404")),
        },
        "/api/v1/watchlists/{watchlist_id}/instruments/{instrument_id}": {
            "put": _op(
                "Append an instrument (already there: 200, unchanged); unknown instrument 404; list full (250) 422",
                "200",
                _ref("Watchlist"),
                params=["{watchlist_id}", "{instrument_id}"],
                errors=("401", "404", "422"),
            ),
            "delete": _op(
                "Remove an instrument (not in the list: 404)",
                "200",
                _ref("Watchlist"),
                params=["{watchlist_id}", "{instrument_id}"],
                errors=("401", "404"),
            ),
        },
    }
)
SCHEMAS.update(
    {
        "Watchlist": _obj(
            {
                "id": UUID,
                "name": {"type": "string", "minLength": 1, "maxLength": 40},
                "position": {"type": "integer"},
                "instruments": {"type": "array", "items": _ref("Instrument"), "maxItems": 250},
            }
        ),
        "NewWatchlist": _obj({"name": {"type": "string", "minLength": 1, "maxLength": 40}}),
        "WatchlistChange": _obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 40},
                "instrument_ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 250, "uniqueItems": True},
            },
            [],
        ),
    }
)

# Server meta (tradingapp/api/meta.py): what the terminal reads before login.
PATHS["/api/v1/meta"] = {
    "get": _op(
        "Server time, session time zone and market hours, registration, broker, WebSocket address (no auth)",
        "200",
        _ref("Meta"),
        auth=False,
        errors=(),
    )
}
SCHEMAS["Meta"] = _obj(
    {
        "server_time": {**TIME, "description": "the server's clock, UTC with milliseconds"},
        "timezone": {"type": "string", "examples": ["Asia/Kolkata"], "description": "SESSION_TIMEZONE"},
        "market": _obj(
            {
                "open": {"type": "boolean"},
                "opens_at": {**TIME, "description": "start of the session under way, else of the next"},
                "closes_at": {**TIME, "description": "end of the session under way, else of the next"},
            }
        ),
        "registration_open": {"type": "boolean"},
        "broker": {"enum": ["paper", "xts"]},
        "websocket_url": {
            "type": ["string", "null"],
            "description": "WEBSOCKET_PUBLIC_URL; null: ws(s)://<the page's host>:websocket_port/ws",
        },
        "websocket_port": {"type": "integer"},
        "version": {"type": "string"},
    }
)

# The margin estimate (tradingapp/api/order_estimate.py).
PATHS["/api/v1/orders/estimate"] = {
    "post": _op(
        "The margin the order would block and the funds available, by the risk engine's margin model; the"
        " body and its validation (400) are POST /orders' (client_order_id ignored). Nothing is written or"
        " queued. 422 price_unavailable when there is no last price to value a MARKET order",
        "200",
        _ref("OrderEstimate"),
        "NewOrder",
        errors=("400", "401", "422", "503"),
    )
}
SCHEMAS["OrderEstimate"] = _obj(
    {
        "required_margin": {**DECIMAL, "description": "margin the order adds (0 for the part that closes)"},
        "available": DECIMAL,
        "sufficient": {"type": "boolean", "description": "the risk engine's funds rule would pass"},
        "price": {**DECIMAL, "description": "the price the order is valued at (limit, stop, else last)"},
    }
)

# The terminal itself (tradingapp/api/frontend.py): HTML and files of the build, not JSON.
_HTML = {"text/html": {"schema": {"type": "string"}}}
PATHS["/"] = {"get": _op("The terminal (index.html, not cached)", "200", auth=False, errors=("404",))}
PATHS["/{path}"] = {
    "get": _op(
        "A file of the built terminal (assets/* cached a year, immutable; others an hour), else index.html for the"
        " app's client routes; never /api, /health, /ready, /metrics or /ws. 404 (JSON) when the terminal is not"
        " built",
        "200",
        params=["{path}"],
        auth=False,
        errors=("404",),
    )
}
for _page_op in (PATHS["/"]["get"], PATHS["/{path}"]["get"]):
    _page_op["responses"]["200"]["content"] = _HTML


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "tradingapp", "version": "1"},
        "servers": [{"url": current_app.config["API_BASE_URL"]}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
        "paths": PATHS,
    }


@bp.get("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document())
