"""The simulated market: a seeded random walk per instrument with a touch (bid/ask and displayed
size), the day's OHLC and volume, and the market-data payloads built from it (1501 touchline,
1502 depth, 1512 LTP; JSON full and the comma-separated partial form), plus synthetic OHLC bars.

Plain Python, no I/O: the caller owns the clock and the timer.
"""

from __future__ import annotations

import calendar
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from tradingapp.simulators.xts.instruments import Instrument
from tradingapp.simulators.xts.rows import IST, xts_exchange_seconds

STEP_VOLATILITY = 0.0004  # one step's standard deviation, as a fraction of the price
MAX_SPREAD_TICKS = 3
DEFAULT_DISPLAY_SIZE = 500  # lots shown at the touch on each side
SUPPORTED_CODES = (1501, 1502, 1512)


def to_tick(price: Decimal, tick: Decimal) -> Decimal:
    ticks = max((price / tick).to_integral_value(rounding=ROUND_HALF_UP), Decimal(1))
    return (ticks * tick).quantize(tick)


@dataclass
class Book:
    """One instrument's touch and day statistics."""

    instrument: Instrument
    ltp: Decimal
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int = 0
    turnover: Decimal = Decimal(0)
    last_qty: int = 0
    last_time: datetime | None = None
    display_lots: int = DEFAULT_DISPLAY_SIZE
    seq: int = 0

    def price_band(self) -> tuple[Decimal, Decimal]:
        """Exchange price band: 20% around the previous close, on the tick grid."""
        tick = self.instrument.tick_size
        return to_tick(self.close * Decimal("1.2"), tick), to_tick(self.close * Decimal("0.8"), tick)


class Market:
    def __init__(self, instruments: list[Instrument], rng: random.Random, clock):
        self.rng = rng
        self.clock = clock
        self.frozen = False
        self.books: dict[tuple[str, int], Book] = {}
        for ins in instruments:
            price = to_tick(ins.start_price, ins.tick_size)
            book = Book(ins, price, price, price, 0, 0, price, price, price, price)
            self._requote(book)
            self.books[ins.key] = book

    def book(self, segment: str, exchange_instrument_id: int) -> Book | None:
        return self.books.get((segment, exchange_instrument_id))

    def _requote(self, book: Book) -> None:
        """A fresh touch around the last price: 1-3 ticks wide, a random displayed size per side."""
        tick = book.instrument.tick_size
        spread = self.rng.randint(1, MAX_SPREAD_TICKS)
        book.bid = max(book.ltp - tick * self.rng.randint(0, spread), tick)
        book.ask = book.bid + tick * spread
        lots = max(book.display_lots, 1)
        book.bid_size = self.rng.randint(max(lots // 2, 1), lots) * book.instrument.lot_size
        book.ask_size = self.rng.randint(max(lots // 2, 1), lots) * book.instrument.lot_size
        book.seq += 1

    def step(self, book: Book) -> None:
        """One random-walk step: a trade at the new price, then a fresh touch around it."""
        ins = book.instrument
        move = Decimal(str(self.rng.gauss(0.0, STEP_VOLATILITY))) * book.ltp
        self.trade(book, to_tick(book.ltp + move, ins.tick_size), self.rng.randint(1, 20) * ins.lot_size)

    def trade(self, book: Book, price: Decimal, qty: int) -> None:
        book.ltp = price
        book.high, book.low = max(book.high, price), min(book.low, price)
        book.volume += qty
        book.turnover += price * qty
        book.last_qty = qty
        book.last_time = self.clock()
        self._requote(book)

    def set_price(self, book: Book, price: Decimal, bid: Decimal | None = None, ask: Decimal | None = None):
        tick = book.instrument.tick_size
        self.trade(book, to_tick(price, tick), book.instrument.lot_size)
        if bid is not None:
            book.bid = to_tick(bid, tick)
        if ask is not None:
            book.ask = to_tick(ask, tick)

    # ---- payloads -------------------------------------------------------------------------------
    def touchline(self, book: Book) -> dict:
        avg = (book.turnover / book.volume).quantize(Decimal("0.01")) if book.volume else book.ltp
        change = float((book.ltp - book.close) / book.close * 100) if book.close else 0.0
        ltt = xts_exchange_seconds(book.last_time or self.clock())
        return {
            "BidInfo": {"Size": book.bid_size, "Price": float(book.bid), "TotalOrders": 3, "BuyBackMarketMaker": 0},
            "AskInfo": {"Size": book.ask_size, "Price": float(book.ask), "TotalOrders": 4, "BuyBackMarketMaker": 0},
            "LastTradedPrice": float(book.ltp),
            "LastTradedQunatity": book.last_qty,
            "TotalBuyQuantity": book.bid_size * 7,
            "TotalSellQuantity": book.ask_size * 7,
            "TotalTradedQuantity": book.volume,
            "AverageTradedPrice": float(avg),
            "LastTradedTime": ltt,
            "LastUpdateTime": ltt,
            "PercentChange": change,
            "Open": float(book.open),
            "High": float(book.high),
            "Low": float(book.low),
            "Close": float(book.close),
            "TotalValueTraded": None,
            "BuyBackTotalBuy": 0,
            "BuyBackTotalSell": 0,
        }

    def quote(self, book: Book, code: int) -> dict:
        ins = book.instrument
        head = {
            "MessageCode": code,
            "MessageVersion": 4,
            "ApplicationType": 0,
            "TokenID": 0,
            "ExchangeSegment": ins.segment_code,
            "ExchangeInstrumentID": ins.exchange_instrument_id,
            "ExchangeTimeStamp": xts_exchange_seconds(self.clock()),
        }
        if code == 1512:
            return head | {
                "BookType": 1,
                "XMarketType": 1,
                "LastTradedPrice": float(book.ltp),
                "LastTradedQunatity": book.last_qty,
                "LastUpdateTime": head["ExchangeTimeStamp"],
            }
        touch = self.touchline(book)
        if code == 1501:
            return head | {"Touchline": touch, "BookType": 1, "XMarketType": 1, "SequenceNumber": book.seq}
        tick = ins.tick_size
        bids = [self._level(book.bid - tick * i, book.bid_size + i * ins.lot_size) for i in range(5)]
        asks = [self._level(book.ask + tick * i, book.ask_size + i * ins.lot_size) for i in range(5)]
        return head | {"Bids": bids, "Asks": asks, "Touchline": touch, "BookType": 1, "XMarketType": 1}

    @staticmethod
    def _level(price: Decimal, size: int) -> dict:
        return {"Size": size, "Price": float(price), "TotalOrders": 1, "BuyBackMarketMaker": 0}

    def partial(self, book: Book, code: int) -> str:
        """The partial broadcast form: comma-separated key:value pairs, `t` names the instrument."""
        ins = book.instrument
        touch = self.touchline(book)
        parts = [f"t:{ins.segment_code}_{ins.exchange_instrument_id}", f"ltp:{book.ltp}", f"ltq:{book.last_qty}"]
        if code == 1512:
            return ",".join(parts + [f"lut:{touch['LastUpdateTime']}"])
        parts += [
            f"tb:{touch['TotalBuyQuantity']}",
            f"ts:{touch['TotalSellQuantity']}",
            f"v:{book.volume}",
            f"ap:{touch['AverageTradedPrice']}",
            f"ltt:{touch['LastTradedTime']}",
            f"lut:{touch['LastUpdateTime']}",
            f"pc:{touch['PercentChange']:.2f}",
            f"o:{book.open}",
            f"h:{book.high}",
            f"l:{book.low}",
            f"c:{book.close}",
            f"ai:0|{book.ask_size}|{book.ask}|4",
            f"bi:0|{book.bid_size}|{book.bid}|3",
        ]
        return ",".join(parts)

    def quote_json(self, book: Book, code: int) -> str:
        return json.dumps(self.quote(book, code), separators=(",", ":"))


# ---- OHLC history -------------------------------------------------------------------------------
SESSION_OPEN = (9, 15)
SESSION_CLOSE = (15, 30)
MAX_BARS = 20000


def parse_ohlc_time(text: str) -> datetime:
    """XTS OHLC times: 'Dec 02 2019 091500', IST wall clock."""
    return datetime.strptime(text.strip(), "%b %d %Y %H%M%S").replace(tzinfo=IST)


def ohlc_bars(book: Book, start: datetime, end: datetime, compression: int | str, seed: int) -> str:
    """Synthetic bars for [start, end) inside trading sessions, deterministic for a seed and window.

    Bars are 'ts|open|high|low|close|volume|oi' joined (and ended) by ',', ts being IST wall-clock
    encoded as epoch seconds, as the real servers answer.
    """
    ins = book.instrument
    daily = str(compression).upper() == "D"
    step = timedelta(days=1) if daily else timedelta(seconds=int(compression))
    rng = random.Random(f"{seed}:{ins.segment}:{ins.exchange_instrument_id}:{compression}:{start.isoformat()}")
    price = book.close
    out: list[str] = []
    t = start.replace(hour=0, minute=0, second=0) if daily else start
    while t < end and len(out) < MAX_BARS:
        in_session = t.weekday() < 5 and (daily or SESSION_OPEN <= (t.hour, t.minute) < SESSION_CLOSE)
        if in_session:
            prices = [price]
            for _ in range(4):
                prices.append(to_tick(prices[-1] * Decimal(str(1 + rng.gauss(0, STEP_VOLATILITY * 3))), ins.tick_size))
            o, c = prices[0], prices[-1]
            wall = calendar.timegm(t.timetuple())  # IST wall clock read as if it were UTC
            vol = rng.randint(10, 500) * ins.lot_size
            oi = rng.randint(1000, 5000) * ins.lot_size if ins.kind != "EQ" else 0
            out.append(f"{wall}|{o}|{max(prices)}|{min(prices)}|{c}|{vol}|{oi}")
            price = c
        t += step
    return "".join(bar + "," for bar in out)
