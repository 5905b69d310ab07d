"""Redis side of market data and user events: the quote cache and the pub/sub channels.

Writers (the consumer) and readers (REST quotes, the websocket hub, the paper broker) share
these names, so they live in one place. The quote's shape: tradingapp/domain/quotes.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import redis
from flask import current_app
from redis.commands.core import Script


def _ns() -> str:
    ns = current_app.config.get("NAMESPACE", "")
    return f"{ns}:" if ns else ""


def quotes_channel() -> str:
    """Every quote update of every instrument; the websocket hub routes them."""
    return f"{_ns()}md.quotes"


def user_events_channel() -> str:
    """Order, trade and position updates for all users; the hub routes by user_id."""
    return f"{_ns()}user.events"


def quote_key(instrument_id: int) -> str:
    return f"{_ns()}quote:{instrument_id}"


# Writes a batch of quotes atomically, each only if newer than the cached one by (ts, seq): ts as
# epoch microseconds, then the tick's seq (XTS times are whole seconds: a same-second tick of a
# lower seq may arrive in a later batch), so two consumers or a late redelivery never roll a quote
# back. seq travels as 20 zero-padded digits and is compared in two halves (a bigint is past the
# 2^53 a Lua number holds exactly). A quote without a seq ('') is written on a tie in ts; one with
# the cached (ts, seq) is not (the store kept the first tick of that key, so does the cache).
# KEYS: the quote keys, then the staleness index. ARGV: ttl, channel ('' = do not publish), and one
# JSON array with, per key, [ts_us ('' = always write), seq, the JSON to publish, [field, value,
# ...]]. One JSON argument rather than ~30 per quote: redis-py packs each argument in Python, which
# cost more than everything else of a tick batch. A written quote replaces the whole hash (fields
# it lacks are cleared). Returns the 1-based positions of the quotes written, comma-separated (one
# reply rather than one per quote).
_STORE_QUOTES_LUA = """
local index = KEYS[#KEYS]
local ttl, channel = ARGV[1], ARGV[2]
local quotes, written = cjson.decode(ARGV[3]), {}
local function seq_after(a, b)
  local a_high, b_high = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  return a_high > b_high or (a_high == b_high and tonumber(string.sub(a, 11)) > tonumber(string.sub(b, 11)))
end
for i = 1, #KEYS - 1 do
  local key, ts_us, seq, payload, fields = KEYS[i], quotes[i][1], quotes[i][2], quotes[i][3], quotes[i][4]
  local newer = ts_us == ''
  if not newer then
    local stored = redis.call('HMGET', key, 'ts_us', 'seq_key')
    if not stored[1] then
      newer = true
    else
      local new_ts, old_ts = tonumber(ts_us), tonumber(stored[1])
      newer = new_ts > old_ts or (new_ts == old_ts and (seq == '' or not stored[2] or seq_after(seq, stored[2])))
    end
  end
  if newer then
    redis.call('DEL', key)
    if ts_us ~= '' then
      redis.call('HSET', key, 'ts_us', ts_us, unpack(fields))
      if seq ~= '' then redis.call('HSET', key, 'seq_key', seq) end
      redis.call('ZADD', index, ts_us, string.match(key, '(%d+)$'))
    else
      redis.call('HSET', key, unpack(fields))
    end
    redis.call('EXPIRE', key, ttl)
    if channel ~= '' then redis.call('PUBLISH', channel, payload) end
    written[#written + 1] = i
  end
end
return table.concat(written, ',')
"""
_script_cache: list[Script] = []
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def quotes_updated_key() -> str:
    """Sorted set: instrument id scored by the epoch microseconds of its cached quote."""
    return f"{_ns()}quotes:updated"


def store_quotes(
    client: redis.Redis | redis.client.Pipeline,
    quotes: list[dict],
    ttl: int,
    publish: bool = True,
    seqs: list[int] | None = None,
) -> list[dict]:
    """Write quotes (JSON-ready dicts, one per instrument) in one script call: each one only if it
    is newer than the cached quote by (`ts`, the tick's seq from `seqs`, in the quotes' order; a
    quote without one wins a tie in ts); written ones are published when `publish`. Returns the
    quotes written (on a pipeline: [] until it executes)."""
    if not quotes:
        return []
    keys, entries, prefix = [], [], _ns()
    for i, quote in enumerate(quotes):
        fields = [text for name, value in quote.items() if value is not None for text in (name, str(value))]
        keys.append(f"{prefix}quote:{int(quote['instrument_id'])}")
        seq = "" if seqs is None else f"{seqs[i]:020d}"
        entries.append((_epoch_us(quote.get("ts")), seq, orjson.dumps(quote).decode() if publish else "", fields))
    args = [ttl, quotes_channel() if publish else "", orjson.dumps(entries)]
    written = _script(client)(keys=[*keys, quotes_updated_key()], args=args, client=client)
    if isinstance(client, redis.client.Pipeline):
        return []
    return [quotes[int(i) - 1] for i in written.split(b",") if i]


def store_quote(pipe: redis.client.Pipeline, quote: dict, ttl: int) -> None:
    """Queue the write of one quote into the cache on a pipeline (no publish): seeding, tests."""
    store_quotes(pipe, [quote], ttl, publish=False)


def _script(client) -> Script:
    if not _script_cache:  # the SHA is computed once; EVALSHA loads the script on first use
        _script_cache.append(client.register_script(_STORE_QUOTES_LUA))
    return _script_cache[0]


def _epoch_us(ts: object) -> str:
    if not ts:
        return ""
    return str((_aware(ts) - EPOCH) // timedelta(microseconds=1))


def _aware(ts: object) -> datetime:
    moment = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_stale(quote: dict, now: datetime, stale_after: float) -> bool:
    """A quote is stale when its feed has been silent past `stale_after` seconds (no ts: stale)."""
    try:
        return (now - _aware(quote["ts"])).total_seconds() > stale_after
    except (KeyError, ValueError, TypeError):
        return True


def stale_instruments(client: redis.Redis, now: datetime, stale_after: float, limit: int) -> tuple[int, list[int]]:
    """How many instruments have a cached quote older than `stale_after` seconds, and the ids of the
    `limit` longest silent (from the staleness index the quote script keeps)."""
    cutoff = f"({(now - EPOCH) // timedelta(microseconds=1) - round(stale_after * 1_000_000)}"
    pipe = client.pipeline(transaction=False)
    pipe.zcount(quotes_updated_key(), "-inf", cutoff)
    pipe.zrangebyscore(quotes_updated_key(), "-inf", cutoff, start=0, num=limit)
    count, ids = pipe.execute()
    return count, [int(i) for i in ids]


def publish_quote(pipe: redis.client.Pipeline, quote: dict) -> None:
    pipe.publish(quotes_channel(), orjson.dumps(quote))


def publish_user_event(client: redis.Redis, user_id: str, kind: str, payload: dict) -> None:
    """kind is 'order', 'trade' or 'position'; the hub delivers {"type": kind, kind: payload}."""
    client.publish(user_events_channel(), orjson.dumps({"user_id": user_id, "type": kind, kind: payload}))


def read_quotes(client: redis.Redis, instrument_ids: list[int]) -> dict[int, dict]:
    """Cached quotes by instrument id (missing ones left out), values as strings."""
    pipe = client.pipeline(transaction=False)
    for iid in instrument_ids:
        pipe.hgetall(quote_key(iid))
    quotes = {}
    for iid, raw in zip(instrument_ids, pipe.execute(), strict=True):
        if raw:
            quote = {k.decode(): v.decode() for k, v in raw.items()}
            quote.pop("ts_us", None)  # the script's comparison keys, not part of the quote
            quote.pop("seq_key", None)
            quote["instrument_id"] = iid
            quotes[iid] = quote
    return quotes


def last_price(quote: dict | None) -> Decimal | None:
    if not quote or not quote.get("ltp"):
        return None
    return Decimal(quote["ltp"])
