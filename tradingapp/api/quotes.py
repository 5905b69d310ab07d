"""GET /api/v1/quotes: the latest quotes (services/market/quotes.py finds them)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.domain.quotes import quote_from_cache
from tradingapp.errors import validation_error
from tradingapp.security.auth import login_required
from tradingapp.services.market.quotes import latest_quotes

bp = Blueprint("quotes", __name__, url_prefix="/api/v1/quotes")

MAX_IDS = 100


@bp.get("")
@doc(
    "Latest cached quotes (a stale or missing one from the broker's REST quote when it has one)",
    response=s.QuoteList,
    params=("instrument_ids",),
)
@login_required()
def get_quotes():
    """GET /api/v1/quotes?instrument_ids=1,2,3 -> {"items": [...], "missing": [...]}.

    `items` holds one quote per requested instrument that has a cached quote, in request order
    (duplicates collapsed): prices as decimal strings, quantities as integers. `missing` lists
    the requested ids with no cached quote (unknown instrument, or no tick within QUOTE_TTL).
    Each item carries `stale`: its feed has been silent longer than QUOTE_STALE_AFTER. A stale or
    missing quote is replaced by the broker's REST quote when the broker offers one (paper: no).
    """
    ids = parse_instrument_ids(request.args.get("instrument_ids"))
    found, stale = latest_quotes(ids)
    return jsonify(
        s.QuoteList.dump(
            {
                "items": [{**quote_from_cache(found[iid]), "stale": iid in stale} for iid in ids if iid in found],
                "missing": [iid for iid in ids if iid not in found],
            }
        )
    )


def parse_instrument_ids(raw: str | None) -> list[int]:
    if raw is None or not raw.strip():
        raise validation_error("instrument_ids is required", field="instrument_ids")
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or len(part) > 10 or int(part) <= 0:
            raise validation_error(
                "instrument_ids must be positive integers separated by commas", field="instrument_ids", value=part[:20]
            )
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > MAX_IDS:
        raise validation_error(f"at most {MAX_IDS} instrument_ids per request", field="instrument_ids")
    return ids
