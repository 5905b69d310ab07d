"""The terminal (frontend/dist) in Debian's chromium, driven by Playwright, against the real stack
(backend serving the build, websocket, worker, consumer, feed) on free ports. Three figures of
issue 11, each beside a baseline measured in the same run:

(a) Initial JavaScript, gzipped: the scripts index.html loads eagerly plus its modulepreloads
    (gzip level 6, as a server compresses them). Baseline: React + ReactDOM alone, built by the
    same Vite from the terminal's node_modules (a page that renders one element).
(b) Login to the first live price drawn: from the click on "Log in" (a capturing listener) to the
    first animation frame after a watchlist price appears (a MutationObserver), in a fresh browser
    context each run (cold HTTP cache), the page already loaded. Baselines: a bare page on the same
    origin that logs in over the same API, then draws one price, fetched with GET /quotes, or
    received on the WebSocket.
(c) 200 watchlist rows, each quoted 10 times a second: the quotes are written and published on
    the Redis channel the websocket's listener reads, exactly as the consumer does
    (realtime.store_quotes), then go through the real websocket process to the page; --source feed
    uses the feed process at FEED_INTERVAL_MS=100 over the 200 instruments instead (RabbitMQ, the
    consumer, Postgres: on 2 shared cores it delivers only ~5 quotes/s per row). Measured in a
    window of a minute: main-thread busy share from long tasks (PerformanceObserver 'longtask')
    and from all tasks (the renderer's TaskDuration, CDP), the longest frame (gaps between
    requestAnimationFrame callbacks; long-animation-frame entries too), the JS heap after a forced
    GC at the start and the end of the window and four times in as long again after it ("heap
    flat": the least of the last three readings is within 10% (or 0.5 MiB) of the least of the
    first three; their slope is printed too). Baseline: a bare page with the same 200 rows (all in
    the DOM; the terminal's list is virtualised), subscribed to the same instruments on its own
    WebSocket, writing each quote into its row's cells.

    python -m bench.terminal [--quick] [--seconds 60] [--runs 5] [--rows 200] [--source redis|feed]

--quick: 10 s windows and 3 login runs. The build is frontend/dist, rebuilt when its sources
changed (tests/support/frontend_build.py; TRADINGAPP_FRONTEND_DIST names another build).
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import requests
from playwright.sync_api import Browser, Page, sync_playwright

from bench.common import bench_environment
from tests.support.frontend_build import FRONTEND, built_dist
from tests.support.net import free_port
from tests.support.stack import Stack
from tradingapp import realtime
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 720}
ROWS = 200
PASSWORD = "bench-terminal-password-1"
WARMUP = 4.0  # seconds of quotes before a window opens: subscriptions made, rows drawn
TARGETS = {"js_kb": 250, "login_ms": 1000, "busy": 0.5, "frame_ms": 100}


# -- (a) initial JavaScript ----------------------------------------------------------------------
class EagerScripts(HTMLParser):
    """The JavaScript files an index.html loads before the app runs: <script src> (not async
    nomodule fallbacks) and <link rel=modulepreload>."""

    def __init__(self):
        super().__init__()
        self.files: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src") and "nomodule" not in a:
            self.files.append(a["src"])
        elif tag == "link" and a.get("rel") == "modulepreload" and a.get("href"):
            self.files.append(a["href"])


def eager_js(dist: Path) -> dict[str, tuple[int, int]]:
    """{file: (bytes, gzipped bytes)} of the eager scripts of dist/index.html."""
    parser = EagerScripts()
    parser.feed((dist / "index.html").read_text())
    sizes = {}
    for src in parser.files:
        data = (dist / src.lstrip("/")).read_bytes()
        sizes[src] = (len(data), len(gzip.compress(data, compresslevel=6, mtime=0)))
    return sizes


REACT_ONLY = """import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
createRoot(document.getElementById('root')).render(createElement('p', null, 'hello'));
"""


def react_baseline_js() -> dict[str, tuple[int, int]]:
    """The same measure of a Vite production build of React + ReactDOM rendering one element."""
    with tempfile.TemporaryDirectory(prefix="bench-react-") as tmp:
        root = Path(tmp)
        (root / "node_modules").symlink_to(FRONTEND / "node_modules")
        (root / "main.js").write_text(REACT_ONLY)
        (root / "index.html").write_text(
            '<!doctype html><div id="root"></div><script type="module" src="/main.js"></script>'
        )
        vite = FRONTEND / "node_modules" / ".bin" / "vite"
        done = subprocess.run(
            [str(vite), "build", "--logLevel", "error", "--outDir", "dist"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the React-only build failed:\n{done.stdout}{done.stderr}")
        return eager_js(root / "dist")


# -- the stack and its users ---------------------------------------------------------------------
def add_instruments(app, total: int) -> list[int]:
    """Bench instruments up to `total` (the demo seed has six); returns every instrument id."""
    with app.app_context():
        have = db.session.query(Instrument).count()
        for n in range(have, total):
            db.session.add(
                Instrument(
                    exchange_segment="NSECM",
                    exchange_instrument_id=900_000 + n,
                    symbol=f"BENCH{n:03d}",
                    name=f"Bench instrument {n}",
                    series="EQ",
                    lot_size=1,
                    tick_size=Decimal("0.05"),
                )
            )
        db.session.commit()
        ids = [i for (i,) in db.session.query(Instrument.id).order_by(Instrument.id)]
        db.session.remove()
    return ids


class Trader:
    def __init__(self, base_url: str, instrument_ids: list[int]):
        self.base_url = base_url
        self.email = f"bench-{uuid.uuid4().hex[:10]}@bench.local"
        self.password = PASSWORD
        self._call("post", "/auth/register", {"email": self.email, "password": PASSWORD, "name": "Bench Trader"})
        self.token = self._call("post", "/auth/login", {"email": self.email, "password": PASSWORD})["access_token"]
        watchlist = self._call("post", "/watchlists", {"name": "Watchlist 1"})
        self._call("patch", f"/watchlists/{watchlist['id']}", {"instrument_ids": instrument_ids})

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if getattr(self, "token", None) else {}
        response = requests.request(method, f"{self.base_url}/api/v1{path}", json=body, headers=headers, timeout=10)
        if response.status_code >= 400:
            raise RuntimeError(f"{method.upper()} {path}: {response.status_code} {response.text}")
        return response.json()


def restart(stack: Stack, name: str, **extra_env: str) -> None:
    stack.kill(name)
    argv, extra = stack.commands()[name]
    stack.start_one(name, argv, {**extra, **extra_env})


# -- (b) login to the first live price -------------------------------------------------------------
WATCH_FIRST_PRICE = """() => {
  window.__t0 = null; window.__t1 = null;
  document.querySelector('[data-testid="login-submit"]')
    .addEventListener('click', () => { window.__t0 = performance.now(); }, { capture: true });
  const priced = () => [...document.querySelectorAll('[data-testid="watchlist-ltp"]')]
    .some((el) => /\\d/.test(el.textContent));
  new MutationObserver((_, observer) => {
    if (window.__t0 !== null && window.__t1 === null && priced()) {
      observer.disconnect();
      requestAnimationFrame(() => { window.__t1 = performance.now(); });
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
}"""

BARE_LOGIN_FILE = "bench-bare-login.html"
BARE_ROWS_FILE = "bench-bare-rows.html"
BARE_LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bare login</title></head>
<body><form id="f"><input id="e" aria-label="Email"><input id="p" type="password" aria-label="Password">
<button id="go">Log in</button></form><p>RELIANCE <span id="price">-</span></p><script>
const params = new URLSearchParams(location.hash.slice(1));
document.getElementById('e').value = params.get('email');
document.getElementById('p').value = params.get('password');
document.getElementById('f').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  window.__t0 = performance.now();
  const login = await fetch('/api/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: document.getElementById('e').value,
                           password: document.getElementById('p').value }) });
  const token = (await login.json()).access_token;
  const draw = (ltp) => {
    document.getElementById('price').textContent = ltp;
    requestAnimationFrame(() => { window.__t1 = performance.now(); });
  };
  if (params.get('mode') === 'rest') {
    const quotes = await fetch('/api/v1/quotes?instrument_ids=1', { headers: { authorization: 'Bearer ' + token } });
    draw((await quotes.json()).items[0].ltp);
  } else {
    const ws = new WebSocket(params.get('ws') + '?token=' + encodeURIComponent(token));
    ws.onopen = () => ws.send(JSON.stringify({ action: 'subscribe', instrument_ids: [1], mode: 'ltp' }));
    ws.onmessage = (m) => { const msg = JSON.parse(m.data); if (msg.type === 'quote') { ws.close(); draw(msg.ltp); } };
  }
});
</script></body></html>"""


def wait_js(page: Page, expression: str, timeout: float = 30) -> float:
    page.wait_for_function(expression, timeout=timeout * 1000)
    return page.evaluate(expression)


def login_to_price_app(browser: Browser, stack: Stack, trader: Trader) -> float:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/login")
        page.get_by_test_id("login-email").fill(trader.email)
        page.get_by_test_id("login-password").fill(trader.password)
        page.evaluate(WATCH_FIRST_PRICE)
        page.get_by_test_id("login-submit").click()
        return wait_js(page, "window.__t1 !== null && window.__t1 - window.__t0")
    finally:
        context.close()


def login_to_price_bare(browser: Browser, stack: Stack, trader: Trader, mode: str) -> float:
    query = urlencode({"email": trader.email, "password": trader.password, "mode": mode, "ws": stack.ws_url})
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/{BARE_LOGIN_FILE}#{query}")
        page.click("#go")
        return wait_js(page, "window.__t1 != null && window.__t1 - window.__t0")
    finally:
        context.close()


# -- (c) 200 rows under load ---------------------------------------------------------------------
FRAME_METER = """(() => {
  const b = window.__bench = { longtasks: [], loafs: [], gaps: [], on: false, last: 0, quotes: 0, sockets: 0 };
  // quote messages received, counted on the page's own sockets (one string search per message)
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      b.sockets++;
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string') b.quotes += e.data.split('"type":"quote"').length - 1;
      });
    }
  };
  new PerformanceObserver((list) => { for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]); })
    .observe({ type: 'longtask', buffered: true });
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) b.loafs.push([e.startTime, e.duration]); })
      .observe({ type: 'long-animation-frame', buffered: true });
  } catch (e) {}
  const frame = (t) => { if (b.on && b.last) b.gaps.push(t - b.last); b.last = t; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
})();"""

BARE_ROWS = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bare rows</title>
<style>body{font:13px system-ui;margin:0}table{border-collapse:collapse;width:100%}
td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child{text-align:left}
.up{color:#047857}.down{color:#c81e1e}</style>
</head><body><table><tbody id="rows"></tbody></table><script>
const params = new URLSearchParams(location.hash.slice(1));
const ids = params.get('ids').split(',').map(Number), cells = new Map(), body = document.getElementById('rows');
for (const id of ids) {
  const tr = document.createElement('tr'), tds = [];
  for (let i = 0; i < 6; i++) { const td = document.createElement('td'); tr.appendChild(td); tds.push(td); }
  tds[0].textContent = '#' + id; body.appendChild(tr); cells.set(id, tds);
}
const ws = new WebSocket(params.get('ws') + '?token=' + encodeURIComponent(params.get('token')));
ws.onopen = () => { for (let i = 0; i < ids.length; i += 100)
  ws.send(JSON.stringify({ action: 'subscribe', instrument_ids: ids.slice(i, i + 100), mode: 'full' })); };
ws.onmessage = (m) => {
  const q = JSON.parse(m.data);
  if (q.type !== 'quote') return;
  const c = cells.get(q.instrument_id);
  if (!c) return;
  const change = Number(q.ltp) - Number(q.close);
  c[1].textContent = q.ltp;
  c[2].textContent = change.toFixed(2);
  c[2].className = c[3].className = change >= 0 ? 'up' : 'down';
  c[3].textContent = (change / Number(q.close) * 100).toFixed(2) + '%';
  c[4].textContent = q.bid + ' / ' + q.ask;
  c[5].textContent = q.volume;
};
</script></body></html>"""


class QuotePublisher(threading.Thread):
    """Quotes for every instrument `rate` times a second, written and published exactly as the
    consumer does (realtime.store_quotes: the cache write and the PUBLISH on the channel the
    websocket's listener reads, in one script call per batch)."""

    def __init__(self, app, ids: list[int], rate: float):
        super().__init__(daemon=True)
        self.app, self.ids, self.interval = app, ids, 1 / rate
        self.stop = threading.Event()
        self.sent = 0
        self.rng = random.Random(11)

    def run(self) -> None:
        prices = {i: 1000.0 + 7 * i for i in self.ids}
        volume = 0
        with self.app.app_context():
            client, ttl = get_redis(), self.app.config["QUOTE_TTL"]
            due = time.monotonic()
            while not self.stop.is_set():
                ts = datetime.now(UTC).isoformat()
                volume += 10
                batch = []
                for i in self.ids:
                    prices[i] = max(1.0, prices[i] + self.rng.choice((-0.05, 0.0, 0.05, 0.10, -0.10)))
                    p, close = prices[i], f"{1000 + 7 * i:.2f}"
                    batch.append(
                        {
                            "instrument_id": i,
                            "ltp": f"{p:.2f}",
                            "ltq": 5,
                            "bid": f"{p - 0.05:.2f}",
                            "ask": f"{p + 0.05:.2f}",
                            "bid_qty": 100,
                            "ask_qty": 90,
                            "open": close,
                            "high": f"{p + 5:.2f}",
                            "low": f"{p - 5:.2f}",
                            "close": close,
                            "volume": volume,
                            "ts": ts,
                        }
                    )
                realtime.store_quotes(client, batch, ttl)
                self.sent += len(batch)
                due += self.interval
                self.stop.wait(max(due - time.monotonic(), 0))


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores, /proc/stat)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    mean_t = statistics.fmean(t for t, _ in points)
    mean_h = statistics.fmean(h for _, h in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 60 * sum((t - mean_t) * (h - mean_h) for t, h in points) / var if var else 0.0


def metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def heap_after_gc(cdp) -> float:
    """The live heap in MiB: the least of three readings, each after a forced GC, 0.3 s apart (with
    quotes arriving, one reading also holds whatever was in flight at that instant)."""
    readings = []
    for n in range(3):
        if n:
            time.sleep(0.3)
        cdp.send("HeapProfiler.collectGarbage")
        readings.append(cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20)
    return min(readings)


def measure_window(page: Page, seconds: float, published=lambda: 0) -> dict:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    time.sleep(WARMUP)
    heap0 = heap_after_gc(cdp)
    samples = []
    m0, wall0 = metrics(cdp), time.monotonic()
    t0, quotes0 = page.evaluate(
        "() => { __bench.gaps = []; __bench.last = 0; __bench.on = true; return [performance.now(), __bench.quotes]; }"
    )
    busy0, published0 = machine_busy_seconds(), published()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(5.0, max(end - time.monotonic(), 0)))
        samples.append(cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20)
    t1, quotes1 = page.evaluate("() => { __bench.on = false; return [performance.now(), __bench.quotes]; }")
    m1, wall1 = metrics(cdp), time.monotonic()
    machine = (machine_busy_seconds() - busy0) / (wall1 - wall0)
    sent = (published() - published0) / (wall1 - wall0)
    quotes = quotes1 - quotes0
    b = page.evaluate(
        "() => ({ longtasks: __bench.longtasks, loafs: __bench.loafs, gaps: __bench.gaps, sockets: __bench.sockets })"
    )
    heap1 = heap_after_gc(cdp)
    # the heap's trend: after the window (its forced GCs would be pauses inside it), the quotes go
    # on for as long again with a GC'd reading every quarter; the slope is fitted over all of them
    trend = [(0.0, heap0), (wall1 - wall0, heap1)]
    for _ in range(4):
        time.sleep(seconds / 4)
        trend.append((time.monotonic() - wall0, heap_after_gc(cdp)))
    window_ms = t1 - t0
    inside = [(s, d) for s, d in b["longtasks"] if t0 <= s <= t1]
    loafs = [d for s, d in b["loafs"] if t0 <= s <= t1]
    gaps = b["gaps"] or [0.0]
    return {
        "seconds": window_ms / 1000,
        "machine_cores": machine,
        "published_per_s": sent,
        "quotes": quotes,
        "sockets": b["sockets"],
        "longtask_share": sum(d for _, d in inside) / window_ms,
        "longtasks": len(inside),
        "task_share": (m1["TaskDuration"] - m0["TaskDuration"]) / (wall1 - wall0),
        "script_share": (m1["ScriptDuration"] - m0["ScriptDuration"]) / (wall1 - wall0),
        "frames": len(b["gaps"]),
        "frame_max": max(gaps),
        "frame_p99": statistics.quantiles(gaps, n=100)[98] if len(gaps) > 1 else gaps[0],
        "frames_over_100": sum(1 for g in gaps if g > 100),
        "loaf_max": max(loafs, default=0.0),
        "heap_start": heap0,
        "heap_end": heap1,
        "heap_trend": trend,
        "heap_slope": slope_per_minute(trend),
        # the floor: the least of the last three readings against the least of the first three
        "heap_floor_growth": min(h for _, h in trend[-3:]) - min(h for _, h in trend[:3]),
        "heap_samples": samples,
        "dom_rows": page.evaluate(
            "() => document.querySelectorAll('[data-testid^=\"watchlist-row-\"], #rows tr').length"
        ),
    }


def rows_app(browser: Browser, stack: Stack, trader: Trader, seconds: float, published) -> dict:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(FRAME_METER)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/login")
        page.get_by_test_id("login-email").fill(trader.email)
        page.get_by_test_id("login-password").fill(trader.password)
        page.get_by_test_id("login-submit").click()
        page.locator('[data-testid="watchlist-ltp"]').first.wait_for()
        page.wait_for_function(
            "() => /\\d/.test(document.querySelector('[data-testid=\"watchlist-ltp\"]').textContent)"
        )
        return measure_window(page, seconds, published)
    finally:
        context.close()


def rows_bare(browser: Browser, stack: Stack, trader: Trader, ids: list[int], seconds: float, published) -> dict:
    query = urlencode({"ids": ",".join(map(str, ids)), "ws": stack.ws_url, "token": trader.token})
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(FRAME_METER)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/{BARE_ROWS_FILE}#{query}")
        page.wait_for_function("() => /\\d/.test(document.querySelector('#rows tr td:nth-child(2)').textContent)")
        return measure_window(page, seconds, published)
    finally:
        context.close()


def serving_dist(dist: Path, into: Path) -> Path:
    """A copy of the build with the bare pages beside index.html: the backend serves them from
    the same origin as the terminal (a page the browser did not get from 127.0.0.1 may not open a
    socket to it: Chrome's local network access checks)."""
    served = into / "dist"
    shutil.copytree(dist, served)
    (served / BARE_LOGIN_FILE).write_text(BARE_LOGIN)
    (served / BARE_ROWS_FILE).write_text(BARE_ROWS)
    return served


# -- report --------------------------------------------------------------------------------------
def kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def print_js(app: dict, react: dict) -> int:
    app_gz, react_gz = sum(g for _, g in app.values()), sum(g for _, g in react.values())
    print("\n(a) initial JavaScript (eager scripts + modulepreloads of index.html), gzip -6")
    for src, (raw, gz) in app.items():
        print(f"    terminal  {src:<44} {kb(raw):>11} raw {kb(gz):>10} gz")
    for src, (raw, gz) in react.items():
        print(f"    baseline  {src:<44} {kb(raw):>11} raw {kb(gz):>10} gz  (React + ReactDOM alone)")
    return app_gz - react_gz


def row(name: str, app: str, base: str, target: str, result: str) -> None:
    print(f"  {name:<34} {app:>16} {base:>20} {target:>12}  {result}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s windows, 3 login runs")
    parser.add_argument("--seconds", type=float, default=None, help="length of each (c) window (default 60)")
    parser.add_argument("--runs", type=int, default=None, help="login runs of each page (default 5)")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument(
        "--source",
        choices=("redis", "feed"),
        default="redis",
        help="(c)'s quotes: published on the websocket's Redis channel as the consumer "
        "does (default), or the feed process at FEED_INTERVAL_MS=100 through RabbitMQ "
        "and the consumer",
    )
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    runs = args.runs or (3 if args.quick else 5)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        sys.exit(f"chromium is missing at {CHROMIUM}: apt-get install chromium")

    dist = built_dist()
    app_js, react_js = eager_js(dist), react_baseline_js()
    app_gz, react_gz = sum(g for _, g in app_js.values()), sum(g for _, g in react_js.values())

    with bench_environment() as (env, app), tempfile.TemporaryDirectory(prefix="bench-terminal-") as tmp:
        served = serving_dist(dist, Path(tmp))
        ids = add_instruments(app, args.rows)
        ws_port = free_port()
        stack = Stack(
            {**env, "FRONTEND_DIST": str(served), "WEBSOCKET_PORT": str(ws_port), "FEED_INTERVAL_MS": "1000"},
            ws_port=ws_port,
        )
        try:
            stack.start()
            login_trader = Trader(stack.base_url, ids[:6])
            rows_trader = Trader(stack.base_url, ids[: args.rows])
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                try:
                    # one unmeasured round of each warms the servers (and the OS page cache)
                    login_to_price_app(browser, stack, login_trader)
                    login_to_price_bare(browser, stack, login_trader, "rest")
                    login_to_price_bare(browser, stack, login_trader, "ws")
                    logins = {"app": [], "rest": [], "ws": []}
                    for _ in range(runs):
                        logins["app"].append(login_to_price_app(browser, stack, login_trader))
                        logins["rest"].append(login_to_price_bare(browser, stack, login_trader, "rest"))
                        logins["ws"].append(login_to_price_bare(browser, stack, login_trader, "ws"))

                    publisher = None
                    if args.source == "feed":
                        restart(stack, "feed", FEED_INTERVAL_MS="100")
                    else:  # the feed would quote the same instruments besides
                        stack.kill("feed")
                        publisher = QuotePublisher(app, ids[: args.rows], rate=10)
                        publisher.start()
                    time.sleep(3)
                    stack.assert_alive()
                    try:
                        published = (lambda: publisher.sent) if publisher else (lambda: 0)
                        app_rows = rows_app(browser, stack, rows_trader, seconds, published)
                        bare_rows = rows_bare(browser, stack, rows_trader, ids[: args.rows], seconds, published)
                    finally:
                        if publisher:
                            publisher.stop.set()
                            publisher.join(10)
                    stack.assert_alive()
                finally:
                    browser.close()
        except Exception:
            print(stack.logs()[-4000:])
            raise
        finally:
            stack.stop()

    print(
        f"\nThe terminal in chromium {CHROMIUM} at {VIEWPORT['width']}x{VIEWPORT['height']}; "
        f"{os.cpu_count()} cores shared by the browser and every process of the stack; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end"
    )
    print_js(app_js, react_js)
    app_login, rest_login, ws_login = (statistics.median(logins[k]) for k in ("app", "rest", "ws"))
    print(f"\n(b) login -> first live price drawn, {runs} runs each (cold context):")
    for name, values in (
        ("terminal", logins["app"]),
        ("bare, GET /quotes", logins["rest"]),
        ("bare, WebSocket", logins["ws"]),
    ):
        print(f"    {name:<20} " + "  ".join(f"{v:7.1f}" for v in values) + " ms")
    how = (
        "the feed at FEED_INTERVAL_MS=100 (RabbitMQ, consumer, Redis, websocket)"
        if args.source == "feed"
        else "quotes published on the websocket's Redis channel, 10/s per instrument"
    )
    print(f"\n(c) {args.rows} rows, {how}; {seconds:g} s window each:")
    for name, r in (("terminal", app_rows), ("bare page", bare_rows)):
        per_row = r["quotes"] / max(r["seconds"], 1e-9) / args.rows
        sent = f"published {r['published_per_s'] / args.rows:.1f}/s per row, " if r["published_per_s"] else ""
        print(
            f"    {name:<10} {sent}{r['quotes']:,} quotes received on {r['sockets']} socket(s) "
            f"({per_row:.1f}/s per row), "
            f"{r['dom_rows']} rows in the DOM, {r['frames']} frames, {r['longtasks']} long tasks, machine "
            f"{r['machine_cores']:.2f} cores busy; heap samples (MiB) "
            + " ".join(f"{s:.1f}" for s in r["heap_samples"])
        )

    heap_flat = app_rows["heap_floor_growth"] <= max(0.5, 0.1 * app_rows["heap_start"])
    print("\nResults")
    row("figure", "terminal", "baseline", "target", "")
    row("initial JS, gzipped", kb(app_gz), f"{kb(react_gz)} React", "<= 250 KB", verdict(app_gz <= 250 * 1024))
    row(
        "login -> first live price (median)",
        f"{app_login:.0f} ms",
        f"{rest_login:.0f} / {ws_login:.0f} ms",
        "<= 1000 ms",
        verdict(app_login <= TARGETS["login_ms"]),
    )
    row(
        "main thread busy, long tasks",
        f"{app_rows['longtask_share']:.1%}",
        f"{bare_rows['longtask_share']:.1%}",
        "< 50%",
        verdict(app_rows["longtask_share"] < TARGETS["busy"]),
    )
    row(
        "main thread busy, all tasks (CDP)",
        f"{app_rows['task_share']:.1%}",
        f"{bare_rows['task_share']:.1%}",
        "< 50%",
        verdict(app_rows["task_share"] < TARGETS["busy"]),
    )
    row("  of which script", f"{app_rows['script_share']:.1%}", f"{bare_rows['script_share']:.1%}", "", "")
    row(
        "longest frame (rAF gap)",
        f"{app_rows['frame_max']:.0f} ms",
        f"{bare_rows['frame_max']:.0f} ms",
        "<= 100 ms",
        verdict(app_rows["frame_max"] <= TARGETS["frame_ms"]),
    )
    row("  frames over 100 ms", str(app_rows["frames_over_100"]), str(bare_rows["frames_over_100"]), "0", "")
    row("  p99 frame", f"{app_rows['frame_p99']:.0f} ms", f"{bare_rows['frame_p99']:.0f} ms", "", "")
    row("  longest animation frame (LoAF)", f"{app_rows['loaf_max']:.0f} ms", f"{bare_rows['loaf_max']:.0f} ms", "", "")
    row(
        "JS heap after GC, start -> end",
        f"{app_rows['heap_start']:.1f} -> {app_rows['heap_end']:.1f} MiB",
        f"{bare_rows['heap_start']:.1f} -> {bare_rows['heap_end']:.1f} MiB",
        "",
        "",
    )
    row(
        "  heap floor growth (2 windows)",
        f"{app_rows['heap_floor_growth']:+.2f} MiB",
        f"{bare_rows['heap_floor_growth']:+.2f} MiB",
        "<= 10%",
        verdict(heap_flat) + " (flat)",
    )
    row(
        "  heap slope (2 windows)",
        f"{app_rows['heap_slope']:+.2f} MiB/min",
        f"{bare_rows['heap_slope']:+.2f} MiB/min",
        "",
        "",
    )
    for name, r in (("terminal", app_rows), ("bare page", bare_rows)):
        print(f"    {name} heap after GC (s: MiB): " + "  ".join(f"{t:.0f}: {h:.2f}" for t, h in r["heap_trend"]))


if __name__ == "__main__":
    main()
