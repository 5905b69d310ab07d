"""GET /api/v1/quotes: the latest quotes (services/market/quotes.py finds them)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.domain.quotes import quote_from_cache
from tradingapp.security.auth import login_required
from tradingapp.services.market.quotes import latest_quotes

bp = Blueprint("quotes", __name__, url_prefix="/api/v1/quotes")


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
    ids = parse_instrument_ids(request.args["instrument_ids"])
    found, stale = latest_quotes(ids)
    return jsonify(
        s.QuoteList.dump(
            {
                "items": [{**quote_from_cache(found[iid]), "stale": iid in stale} for iid in ids if iid in found],
                "missing": [iid for iid in ids if iid not in found],
            }
        )
    )


def parse_instrument_ids(raw: str) -> list[int]:
    """The ids in request order, repeats collapsed (the gate checked them against schemas.Query)."""
    return list(dict.fromkeys(int(part) for part in raw.split(",")))
