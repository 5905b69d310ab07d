"""The simulator's instrument universe and its instrument-master lines.

The cash instruments and the NIFTY future carry the exchange segments and exchange instrument ids
that `flask seed` creates, so orders from the app find them. Master lines follow the current
server layout: cash 22 fields, futures 21, options 23 (see shared/xts-api.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

SEGMENT_CODES = {"NSECM": 1, "NSEFO": 2, "NSECD": 3, "BSECM": 11, "BSEFO": 12, "MCXFO": 51}
SEGMENT_NAMES = {code: name for name, code in SEGMENT_CODES.items()}
INSTRUMENT_TYPE = {"EQ": 8, "FUT": 1, "OPT": 2}
OPTION_TYPE = {"CE": 3, "PE": 4}


@dataclass(frozen=True)
class Instrument:
    segment: str
    exchange_instrument_id: int
    name: str
    series: str  # EQ, FUTIDX, OPTIDX
    kind: str  # EQ, FUT, OPT
    lot_size: int
    tick_size: Decimal
    start_price: Decimal
    isin: str = ""
    expiry: date | None = None
    strike: Decimal | None = None
    option_type: str | None = None  # CE / PE
    underlying_id: int = -1
    underlying_index: str = ""
    freeze_qty: int = 100000

    @property
    def key(self) -> tuple[str, int]:
        return (self.segment, self.exchange_instrument_id)

    @property
    def segment_code(self) -> int:
        return SEGMENT_CODES[self.segment]

    @property
    def trading_symbol(self) -> str:
        """XTS prints cash symbols with their series and derivatives as one word."""
        if self.kind == "EQ":
            return f"{self.name}-{self.series}"
        stamp = self.expiry.strftime("%y%b").upper() if self.expiry else ""
        if self.kind == "FUT":
            return f"{self.name}{stamp}FUT"
        return f"{self.name}{stamp}{_plain(self.strike)}{self.option_type}"

    @property
    def display_name(self) -> str:
        if self.kind == "EQ":
            return self.name
        stamp = self.expiry.strftime("%d%b%Y").upper() if self.expiry else ""
        if self.kind == "FUT":
            return f"{self.name} {stamp}"
        return f"{self.name} {stamp} {self.option_type} {_plain(self.strike)}"

    @property
    def instrument_id(self) -> int:
        """XTS's long InstrumentID: segment-prefixed exchange id."""
        return self.segment_code * 100_000_000_000 + 100_000_000 + self.exchange_instrument_id


def _plain(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def _monthly_expiry(today: date) -> date:
    """The last Thursday of the month after `today`'s: a contract that is live all month."""
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    last = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 3) % 7)


def default_universe(today: date | None = None) -> list[Instrument]:
    expiry = _monthly_expiry(today or date.today())
    tick5, tick10 = Decimal("0.05"), Decimal("0.10")
    cash = [
        (2885, "RELIANCE", "2900", "INE002A01018"),
        (11536, "TCS", "4100", "INE467B01029"),
        (1594, "INFY", "1900", "INE009A01021"),
        (1333, "HDFCBANK", "1700", "INE040A01034"),
        (3045, "SBIN", "800", "INE062A01020"),
    ]
    universe = [
        Instrument("NSECM", ex_id, name, "EQ", "EQ", 1, tick5, Decimal(price), isin=isin)
        for ex_id, name, price, isin in cash
    ]
    universe.append(
        Instrument(
            "NSEFO",
            35001,
            "NIFTY",
            "FUTIDX",
            "FUT",
            75,
            tick10,
            Decimal("24000"),
            expiry=expiry,
            underlying_id=26000,
            underlying_index="Nifty 50",
            freeze_qty=1800,
        )
    )
    universe.append(
        Instrument(
            "NSEFO",
            35002,
            "NIFTY",
            "OPTIDX",
            "OPT",
            75,
            tick5,
            Decimal("150"),
            expiry=expiry,
            strike=Decimal("24000"),
            option_type="CE",
            underlying_id=26000,
            underlying_index="Nifty 50",
            freeze_qty=1800,
        )
    )
    return universe


def master_line(ins: Instrument, price_band: tuple[Decimal, Decimal]) -> str:
    high, low = price_band
    head = [
        ins.segment,
        ins.exchange_instrument_id,
        INSTRUMENT_TYPE[ins.kind],
        ins.name,
        ins.trading_symbol,
        ins.series,
        f"{ins.name}-{ins.series}" if ins.kind == "EQ" else ins.trading_symbol,
        ins.instrument_id,
        high,
        low,
        ins.freeze_qty,
        ins.tick_size,
        ins.lot_size,
        1,
    ]
    if ins.kind == "EQ":
        tail = [ins.display_name, ins.isin, 1, 1, ins.trading_symbol, -1, -1, -1]
    else:
        expiry = f"{ins.expiry.isoformat()}T14:30:00" if ins.expiry else ""
        tail = [ins.underlying_id, ins.underlying_index, expiry]
        if ins.kind == "OPT":
            tail += [_plain(ins.strike), OPTION_TYPE[ins.option_type or "CE"]]
        tail += [ins.display_name, 1, 1, ins.trading_symbol]
    return "|".join(str(v) for v in head + tail)


def search_row(ins: Instrument) -> dict:
    """One instrument as the search endpoints answer it."""
    row = {
        "ExchangeSegment": ins.segment_code,
        "ExchangeInstrumentID": ins.exchange_instrument_id,
        "InstrumentType": INSTRUMENT_TYPE[ins.kind],
        "Name": ins.name,
        "DisplayName": ins.display_name,
        "Description": ins.trading_symbol,
        "Series": ins.series,
        "NameWithSeries": f"{ins.name}-{ins.series}",
        "InstrumentID": ins.instrument_id,
        "TickSize": float(ins.tick_size),
        "LotSize": ins.lot_size,
        "FreezeQty": ins.freeze_qty,
        "Multiplier": 1,
    }
    if ins.kind != "EQ":
        row["ContractExpiration"] = f"{ins.expiry.isoformat()}T14:30:00" if ins.expiry else ""
        row["UnderlyingInstrumentId"] = ins.underlying_id
    if ins.kind == "OPT":
        row["StrikePrice"] = float(ins.strike or 0)
        row["OptionType"] = OPTION_TYPE[ins.option_type or "CE"]
    return row
