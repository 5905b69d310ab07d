"""Configuration: the one place that reads the environment.

Every variable of the deployment document is read here, with safe development defaults.
`ProductionConfig` refuses to start with a default secret or password.
"""

from __future__ import annotations

import binascii
import os
import re
import secrets
from base64 import urlsafe_b64decode
from datetime import time
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BASE_DIR = Path(__file__).resolve().parent

# The constant every checkout once shared: production refuses it, development no longer uses it.
DEFAULT_JWT_SECRET = "dev-only-jwt-secret-not-for-production"
# Outside production an unset JWT_SECRET is this install's own random secret, made once (mode 0600,
# git-ignored): a constant would let anyone who can reach a developer's stack mint an admin token.
DEV_JWT_SECRET_FILE = BASE_DIR / "instance" / "dev-jwt-secret"
# Passwords a production deployment must not run with.
WEAK_PASSWORDS = {"", "guest", "postgres", "password", "changeme", "secret", "redis"}

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$", re.IGNORECASE)
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
XTS_SEGMENT_NAMES = ("NSECM", "NSEFO", "NSECD", "BSECM", "BSEFO", "MCXFO")
GENERATE_FERNET_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class ConfigError(RuntimeError):
    """A configuration value is missing, malformed or unsafe."""


def parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def parse_int(name: str, value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def parse_duration(name: str, value: str | None, default: int) -> int:
    """Seconds from '90', '30s', '15m', '24h' or '7d'."""
    if value is None or value.strip() == "":
        return default
    match = _DURATION.match(value)
    if not match:
        raise ConfigError(f"{name} must be a duration like 30s, 15m, 24h or 7d, got {value!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]


def parse_timezone(name: str, value: str | None, default: str) -> str:
    zone = (value or "").strip() or default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} must be an IANA timezone such as Asia/Kolkata, got {value!r}") from None
    return zone


def parse_clock(name: str, value: str | None, default: time) -> time:
    """A time of day from 'HH:MM' (24-hour)."""
    if value is None or value.strip() == "":
        return default
    match = _CLOCK.match(value)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ConfigError(f"{name} must be a time of day like 15:30, got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_list(value: str | None, default: list[str]) -> list[str]:
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_hosts(name: str, value: str | None, default_port: int) -> list[tuple[str, int]]:
    """A comma-separated list of host[:port] (IPv6 in brackets: [::1]:5432); the port defaults to default_port."""
    hosts = []
    for item in parse_list(value, []):
        host, port = item, default_port
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise ConfigError(f"{name}: cannot read {item!r} (use [ipv6]:port)")
                port = parse_int(name, rest[1:], default_port)
        elif item.count(":") == 1:
            host, _, text = item.partition(":")
            port = parse_int(name, text, default_port)
        if not host or not 0 < port < 65536:
            raise ConfigError(f"{name}: cannot read {item!r} (expected host or host:port, comma-separated)")
        hosts.append((host, port))
    return hosts


def parse_choice(name: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    text = (value or "").strip().lower() or default
    if text not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return text


def parse_segments(name: str, value: str | None) -> list[str]:
    """Comma-separated XTS exchange segments, e.g. NSECM,NSEFO."""
    segments = [segment.upper() for segment in parse_list(value, ["NSECM", "NSEFO"])]
    unknown = [segment for segment in segments if segment not in XTS_SEGMENT_NAMES]
    if unknown or not segments:
        raise ConfigError(f"{name} must list exchange segments of {', '.join(XTS_SEGMENT_NAMES)}, got {value!r}")
    return list(dict.fromkeys(segments))


def parse_fernet_keys(name: str, value: str | None) -> list[str]:
    """Comma-separated Fernet keys (32 url-safe base64 bytes each). An error names the key's position,
    never the key."""
    keys = parse_list(value, [])
    for position, key in enumerate(keys, 1):
        try:
            valid = len(urlsafe_b64decode(key.encode("ascii"))) == 32
        except (ValueError, binascii.Error):
            valid = False
        if not valid:
            raise ConfigError(
                f"{name}: key {position} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded bytes); "
                f"generate one with: {GENERATE_FERNET_KEY}"
            )
    return keys


def parse_ws_url(name: str, value: str | None) -> str | None:
    """A ws:// or wss:// URL, or None when empty."""
    url = (value or "").strip()
    if not url:
        return None
    if not re.match(r"^wss?://[^/\s]+(/\S*)?$", url):
        raise ConfigError(f"{name} must be a ws:// or wss:// URL such as wss://example.com/ws, got {value!r}")
    return url


def dev_jwt_secret(path: Path | None = None) -> str:
    """This install's development secret: read from `path` (DEV_JWT_SECRET_FILE), made there first
    when missing (48 random bytes, url-safe; the file mode 0600). Processes starting together agree:
    the file is written whole under another name, then linked into place, and a process that loses
    the race reads the winner's."""
    path = path or DEV_JWT_SECRET_FILE
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if secret:
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: theirs is the one
        except OSError:  # a filesystem without hard links (some bind mounts, WSL's drvfs)
            _create_exclusive(path, draft.read_text())
    finally:
        draft.unlink(missing_ok=True)
    return path.read_text().strip()


def _create_exclusive(path: Path, text: str) -> None:
    """Write `text` to `path` only if no one has made it yet (mode 0600)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(text)


def git_version(root: Path) -> str:
    """The short commit of the checkout at `root` (read from .git, no git binary), else "dev"."""
    try:
        head = (root / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = root / ".git" / ref
            if ref_file.exists():
                head = ref_file.read_text().strip()
            else:
                packed = (root / ".git" / "packed-refs").read_text().splitlines()
                head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
    except (OSError, StopIteration, UnicodeDecodeError):
        return "dev"
    return head[:12] if re.fullmatch(r"[0-9a-f]{40,64}", head) else "dev"


class Config:
    """Settings for a development machine; every value can be overridden by the environment."""

    ENV_NAME = "development"
    TESTING = False

    def __init__(self, env: dict[str, str] | None = None):
        e = dict(os.environ if env is None else env)
        self._env = e
        # Server
        self.PORT = parse_int("PORT", e.get("PORT"), 8080)
        # The address gunicorn listens on (both servers). Loopback unless said otherwise: a developer's
        # stack is not for the network. Production (containers, behind a proxy) listens on every interface.
        self.BIND_HOST = (e.get("BIND_HOST") or "").strip() or (
            "0.0.0.0" if self.ENV_NAME == "production" else "127.0.0.1"
        )
        self.WEBSOCKET_PORT = parse_int("WEBSOCKET_PORT", e.get("WEBSOCKET_PORT"), 8081)
        self.API_BASE_URL = e.get("API_BASE_URL") or f"http://localhost:{self.PORT}"
        self.CORS_ALLOWED_ORIGINS = parse_list(e.get("CORS_ALLOWED_ORIGINS"), [])
        self.MAX_CONTENT_LENGTH = parse_int("MAX_REQUEST_BYTES", e.get("MAX_REQUEST_BYTES"), 64 * 1024)
        # How many reverse proxies (load balancer, nginx) sit in front: their X-Forwarded-For
        # entries are trusted for the client address (login throttling per IP needs the real one).
        self.TRUSTED_PROXY_COUNT = parse_int("TRUSTED_PROXY_COUNT", e.get("TRUSTED_PROXY_COUNT"), 0)
        # Gunicorn worker processes per server (each a gevent loop); one is plenty for a dev machine.
        self.WEB_CONCURRENCY = parse_int("WEB_CONCURRENCY", e.get("WEB_CONCURRENCY"), 1)
        # The WebSocket URL the terminal is told to use (GET /api/v1/meta), e.g. wss://example.com/ws
        # behind a proxy; empty: the terminal opens ws(s)://<its page's host>:WEBSOCKET_PORT/ws.
        self.WEBSOCKET_PUBLIC_URL = parse_ws_url("WEBSOCKET_PUBLIC_URL", e.get("WEBSOCKET_PUBLIC_URL"))
        # The built terminal (Vite's output) the backend serves at /; relative to the repository.
        self.FRONTEND_DIST = str(BASE_DIR / (e.get("FRONTEND_DIST") or "frontend/dist"))
        # Shown by GET /api/v1/meta; empty: the checkout's git commit, else "dev".
        self.APP_VERSION = e.get("APP_VERSION") or git_version(BASE_DIR)
        # Database: Postgres when DB_HOST is set, else embedded SQLite under instance/.
        # DB_HOST may list several servers (host[:port],...; the port defaults to DB_PORT): libpq tries
        # them in turn and keeps the one that accepts writes (target_session_attrs=read-write), so after
        # a failover the next connection finds the new primary without a restart or a proxy.
        self.DB_HOST = e.get("DB_HOST", "").strip()
        self.DB_PORT = parse_int("DB_PORT", e.get("DB_PORT"), 5432)
        self.DB_HOSTS = parse_hosts("DB_HOST", self.DB_HOST, self.DB_PORT)
        self.DB_NAME = e.get("DB_NAME") or "trading_platform"
        self.DB_USER = e.get("DB_USER") or "postgres"
        self.DB_PASSWORD = e.get("DB_PASSWORD", "")
        self.DB_SSL_MODE = parse_choice(
            "DB_SSL_MODE",
            e.get("DB_SSL_MODE"),
            ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
            "prefer",
        )
        # TLS to PostgreSQL: the CA that signed the server's certificate (verify-ca / verify-full need it),
        # and a client certificate and key where the server asks for one.
        self.DB_SSL_ROOT_CERT = e.get("DB_SSL_ROOT_CERT", "")
        self.DB_SSL_CERT = e.get("DB_SSL_CERT", "")
        self.DB_SSL_KEY = e.get("DB_SSL_KEY", "")
        if self.DB_SSL_MODE in ("verify-ca", "verify-full") and not self.DB_SSL_ROOT_CERT:
            raise ConfigError(
                f"DB_SSL_MODE={self.DB_SSL_MODE} needs DB_SSL_ROOT_CERT (the CA file that signed the server)"
            )
        self.DB_CONNECT_TIMEOUT = parse_duration("DB_CONNECT_TIMEOUT", e.get("DB_CONNECT_TIMEOUT"), 5)
        # Read replicas (host[:port],...) for the read-only routes: candles, history lists, trades, the
        # audit trail. Never the order path. A replica more than DB_READ_MAX_LAG seconds behind is skipped.
        self.DB_READ_HOST = e.get("DB_READ_HOST", "").strip()
        self.DB_READ_HOSTS = parse_hosts("DB_READ_HOST", self.DB_READ_HOST, self.DB_PORT)
        self.DB_READ_MAX_LAG = parse_duration("DB_READ_MAX_LAG", e.get("DB_READ_MAX_LAG"), 10)
        # TimescaleDB: auto uses it where the extension is installed and preloaded; on requires it
        # (migrations fail without it); off keeps plain tables even where it exists.
        self.TIMESCALEDB = parse_choice("TIMESCALEDB", e.get("TIMESCALEDB"), ("auto", "on", "off"), "auto")
        self.SQLITE_PATH = e.get("SQLITE_PATH") or str(BASE_DIR / "instance" / "tradingapp.db")
        self.SQLALCHEMY_DATABASE_URI = self.database_url()
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        if self.DB_HOST:
            self.SQLALCHEMY_ENGINE_OPTIONS.update(pool_size=10, max_overflow=20)
        # Redis (REDIS_SSL: rediss://, the server's certificate checked against REDIS_SSL_CA)
        self.REDIS_HOST = e.get("REDIS_HOST") or "localhost"
        self.REDIS_PORT = parse_int("REDIS_PORT", e.get("REDIS_PORT"), 6379)
        self.REDIS_PASSWORD = e.get("REDIS_PASSWORD", "")
        self.REDIS_DB = parse_int("REDIS_DB", e.get("REDIS_DB"), 0)
        self.REDIS_SSL = parse_bool("REDIS_SSL", e.get("REDIS_SSL"), False)
        self.REDIS_SSL_CA = e.get("REDIS_SSL_CA", "")
        # RabbitMQ (RABBITMQ_SSL: amqps, usually port 5671, the server checked against RABBITMQ_SSL_CA)
        self.RABBITMQ_HOST = e.get("RABBITMQ_HOST") or "localhost"
        self.RABBITMQ_SSL = parse_bool("RABBITMQ_SSL", e.get("RABBITMQ_SSL"), False)
        self.RABBITMQ_SSL_CA = e.get("RABBITMQ_SSL_CA", "")
        self.RABBITMQ_PORT = parse_int("RABBITMQ_PORT", e.get("RABBITMQ_PORT"), 5671 if self.RABBITMQ_SSL else 5672)
        self.RABBITMQ_USER = e.get("RABBITMQ_USER") or "guest"
        self.RABBITMQ_PASSWORD = e.get("RABBITMQ_PASSWORD") or "guest"
        self.RABBITMQ_VHOST = e.get("RABBITMQ_VHOST") or "/"
        # Prefix for RabbitMQ exchange/queue names and Redis channels, so parallel runs
        # (tests, several stacks on one Redis) never see each other's messages.
        self.NAMESPACE = e.get("NAMESPACE", "")
        # Broker
        self.BROKER = (e.get("BROKER") or "paper").lower()
        if self.BROKER not in {"paper", "xts"}:
            raise ConfigError(f"BROKER must be 'paper' or 'xts', got {self.BROKER!r}")
        self.XTS_API_URL = e.get("XTS_API_URL", "")
        self.XTS_API_KEY = e.get("XTS_API_KEY", "")
        self.XTS_API_SECRET = e.get("XTS_API_SECRET", "")
        # The market-data API is a separate XTS app with its own key (empty: no REST quotes from XTS).
        self.XTS_MD_API_KEY = e.get("XTS_MD_API_KEY", "")
        self.XTS_MD_API_SECRET = e.get("XTS_MD_API_SECRET", "")
        # Most deployments serve market data under /apimarketdata; the old demo path is /marketdata.
        self.XTS_MARKET_DATA_PREFIX = "/" + (e.get("XTS_MARKET_DATA_PREFIX") or "/apimarketdata").strip("/")
        # Read timeout of one XTS call (the SDK's default); a place that outlives it is looked up, not re-sent.
        self.XTS_TIMEOUT = parse_duration("XTS_TIMEOUT", e.get("XTS_TIMEOUT"), 7)
        # Dealer accounts act for a client: sent as clientID on every call (empty: an investor account).
        self.XTS_CLIENT_ID = e.get("XTS_CLIENT_ID", "")
        # With BROKER=xts, whether a user without a linked XTS account trades through the deployment's
        # own (XTS_API_KEY): every such user's orders and positions then mix in one broker account.
        # Off in production (such a user's order is refused until they link one), on elsewhere (the
        # simulator, demo users); a single-owner deployment turns it on knowingly.
        self.XTS_SHARED_ACCOUNT = parse_bool(
            "XTS_SHARED_ACCOUNT", e.get("XTS_SHARED_ACCOUNT"), self.ENV_NAME != "production"
        )
        # The event bridge's socket.io protocol: Engine.IO 4 (Socket.IO 3+), or 3 for broker servers
        # still on Socket.IO 2.x.
        self.XTS_SOCKETIO_EIO = parse_int("XTS_SOCKETIO_EIO", e.get("XTS_SOCKETIO_EIO"), 4)
        if self.XTS_SOCKETIO_EIO not in (3, 4):
            raise ConfigError(f"XTS_SOCKETIO_EIO must be 3 or 4, got {self.XTS_SOCKETIO_EIO}")
        # The bridge publishes the touchlines it received every this many ms (one message per segment).
        self.XTS_TICK_FLUSH_MS = parse_int("XTS_TICK_FLUSH_MS", e.get("XTS_TICK_FLUSH_MS"), 200)
        # Besides after every reconnect, the bridge re-reads the order and trade books this often
        # (a socket event lost while connected is recovered); 0: only after reconnects.
        self.XTS_RECONCILE_INTERVAL = parse_duration("XTS_RECONCILE_INTERVAL", e.get("XTS_RECONCILE_INTERVAL"), 60)
        # The exchange segments whose instrument master `flask instruments sync` (and the worker's
        # daily sync at INSTRUMENT_SYNC_TIME, session time) downloads.
        self.XTS_SEGMENTS = parse_segments("XTS_SEGMENTS", e.get("XTS_SEGMENTS"))
        self.INSTRUMENT_SYNC_TIME = parse_clock("INSTRUMENT_SYNC_TIME", e.get("INSTRUMENT_SYNC_TIME"), time(8, 0))
        # With BROKER=xts the worker compares our working orders with the broker's order and trade
        # books at its start and this often (0: only at its start).
        self.RECONCILE_INTERVAL = parse_duration("RECONCILE_INTERVAL", e.get("RECONCILE_INTERVAL"), 60)
        # Encryption of linked broker accounts' secrets: the first key encrypts, every key decrypts
        # (rotation: prepend a new key, run `flask accounts rotate-keys`, then drop the old one).
        # Empty outside production: a key derived from JWT_SECRET, with a warning (tradingapp/security/crypto.py).
        self.SECRETS_ENCRYPTION_KEYS = parse_fernet_keys("SECRETS_ENCRYPTION_KEYS", e.get("SECRETS_ENCRYPTION_KEYS"))
        # Auth
        # Production takes it from the environment only (and refuses to start without it); elsewhere
        # an unset secret is this install's random one (dev_jwt_secret).
        self.JWT_SECRET = e.get("JWT_SECRET") or ("" if self.ENV_NAME == "production" else dev_jwt_secret())
        self.JWT_SECRET_KEY = self.JWT_SECRET
        self.SECRET_KEY = self.JWT_SECRET
        self.JWT_EXPIRATION = parse_duration("JWT_EXPIRATION", e.get("JWT_EXPIRATION"), 24 * 3600)
        self.JWT_REFRESH_EXPIRATION = parse_duration(
            "JWT_REFRESH_EXPIRATION", e.get("JWT_REFRESH_EXPIRATION"), 30 * 86400
        )
        self.JWT_ACCESS_TOKEN_EXPIRES = self.JWT_EXPIRATION
        self.JWT_REFRESH_TOKEN_EXPIRES = self.JWT_REFRESH_EXPIRATION
        self.JWT_ALGORITHM = "HS256"
        self.JWT_TOKEN_LOCATION = ["headers"]
        # Open outside production; a production deployment opens it knowingly (docs/security.md).
        self.ALLOW_REGISTRATION = parse_bool(
            "ALLOW_REGISTRATION", e.get("ALLOW_REGISTRATION"), self.ENV_NAME != "production"
        )
        # Registrations (valid bodies, each an argon2 hash) accepted per client address in each window.
        self.REGISTER_MAX_PER_ADDRESS = parse_int("REGISTER_MAX_PER_ADDRESS", e.get("REGISTER_MAX_PER_ADDRESS"), 5)
        self.REGISTER_WINDOW = parse_duration("REGISTER_WINDOW", e.get("REGISTER_WINDOW"), 3600)
        # Failed logins (docs/security.md): an account and address pair has LOGIN_MAX_FAILURES free
        # failures, then waits 1 s, 2 s, 4 s ... up to LOGIN_LOCKOUT before each next try; an address has
        # LOGIN_ADDRESS_MAX_FAILURES across all accounts, then the same backoff. Failures are
        # forgotten LOGIN_FAILURE_MEMORY after the last one. Never a lock on the account itself.
        self.LOGIN_MAX_FAILURES = parse_int("LOGIN_MAX_FAILURES", e.get("LOGIN_MAX_FAILURES"), 5)
        self.LOGIN_LOCKOUT = parse_duration("LOGIN_LOCKOUT", e.get("LOGIN_LOCKOUT"), 15 * 60)
        self.LOGIN_ADDRESS_MAX_FAILURES = parse_int(
            "LOGIN_ADDRESS_MAX_FAILURES", e.get("LOGIN_ADDRESS_MAX_FAILURES"), 50
        )
        self.LOGIN_FAILURE_MEMORY = parse_duration("LOGIN_FAILURE_MEMORY", e.get("LOGIN_FAILURE_MEMORY"), 24 * 3600)
        # Market data and the paper broker
        self.QUOTE_TTL = parse_duration("QUOTE_TTL", e.get("QUOTE_TTL"), 3600)
        self.QUOTE_STALE_AFTER = parse_duration("QUOTE_STALE_AFTER", e.get("QUOTE_STALE_AFTER"), 10)
        self.PAPER_MAX_QUOTE_AGE = parse_duration("PAPER_MAX_QUOTE_AGE", e.get("PAPER_MAX_QUOTE_AGE"), 60)
        # The paper exchange's session end: a DAY order still working after the first one that
        # follows its creation expires.
        self.PAPER_SESSION_END = parse_clock("PAPER_SESSION_END", e.get("PAPER_SESSION_END"), time(15, 30))
        # The session's opening time (same zone), for the market hours GET /api/v1/meta reports
        # (weekdays, PAPER_SESSION_START to PAPER_SESSION_END); the paper exchange itself matches any time.
        self.PAPER_SESSION_START = parse_clock("PAPER_SESSION_START", e.get("PAPER_SESSION_START"), time(9, 15))
        if self.PAPER_SESSION_START >= self.PAPER_SESSION_END:
            raise ConfigError(
                f"PAPER_SESSION_START ({self.PAPER_SESSION_START:%H:%M}) must be before PAPER_SESSION_END "
                f"({self.PAPER_SESSION_END:%H:%M})"
            )
        self.FEED_INTERVAL_MS = parse_int("FEED_INTERVAL_MS", e.get("FEED_INTERVAL_MS"), 1000)
        # Ticks older than this many days are deleted (candles are kept); 0 keeps them forever.
        # With TimescaleDB the same prune drops the chunks past it (no TimescaleDB retention policy).
        self.TICK_RETENTION_DAYS = parse_int("TICK_RETENTION_DAYS", e.get("TICK_RETENTION_DAYS"), 365)
        if self.TICK_RETENTION_DAYS < 0:
            raise ConfigError(f"TICK_RETENTION_DAYS must be 0 (keep forever) or more, got {self.TICK_RETENTION_DAYS}")
        # Orders
        self.ORDER_JOB_TIMEOUT = parse_duration("ORDER_JOB_TIMEOUT", e.get("ORDER_JOB_TIMEOUT"), 30)
        self.SWEEP_INTERVAL = parse_duration("SWEEP_INTERVAL", e.get("SWEEP_INTERVAL"), 15)
        self.SWEEP_PENDING_AFTER = parse_duration("SWEEP_PENDING_AFTER", e.get("SWEEP_PENDING_AFTER"), 10)
        # The sweeper asks the broker about one working order at most this often, and about at
        # most SWEEP_BATCH working orders per round (a real broker rate-limits its order queries).
        self.SWEEP_RECONCILE_EVERY = parse_duration("SWEEP_RECONCILE_EVERY", e.get("SWEEP_RECONCILE_EVERY"), 60)
        self.SWEEP_BATCH = parse_int("SWEEP_BATCH", e.get("SWEEP_BATCH"), 100)
        self.TEST_CRASH_POINT = ""  # only TestConfig reads it
        # A limit or stop price further than this % from the last price is refused (fat finger).
        self.PRICE_BAND_PCT = parse_int("PRICE_BAND_PCT", e.get("PRICE_BAND_PCT"), 20)
        # An identical order still working, placed within this window, is refused as a duplicate.
        self.DUPLICATE_ORDER_WINDOW = parse_duration("DUPLICATE_ORDER_WINDOW", e.get("DUPLICATE_ORDER_WINDOW"), 10)
        # Accounts and risk: a new account's starting cash, and the timezone of the trading day
        # (day positions, the daily loss limit and the daily order count reset at its midnight).
        self.ACCOUNT_INITIAL_CASH = parse_int("ACCOUNT_INITIAL_CASH", e.get("ACCOUNT_INITIAL_CASH"), 10_000_000)
        self.SESSION_TIMEZONE = parse_timezone("SESSION_TIMEZONE", e.get("SESSION_TIMEZONE"), "Asia/Kolkata")
        # Unset, the paper session's end follows the trading day's timezone: both roll over together.
        self.PAPER_SESSION_TZ = parse_timezone("PAPER_SESSION_TZ", e.get("PAPER_SESSION_TZ"), self.SESSION_TIMEZONE)
        self.LOG_LEVEL = (e.get("LOG_LEVEL") or "INFO").upper()
        # Observability (README "Operations"). Log lines: JSON for machines (compose, the ELK
        # profile), text for a person at `make run`.
        self.LOG_FORMAT = (e.get("LOG_FORMAT") or ("json" if self.ENV_NAME == "production" else "text")).strip().lower()
        if self.LOG_FORMAT not in {"json", "text"}:
            raise ConfigError(f"LOG_FORMAT must be json or text, got {self.LOG_FORMAT!r}")
        # false: every metric is a no-op (the benchmarks measure the instrumentation's cost this way).
        self.METRICS_ENABLED = parse_bool("METRICS_ENABLED", e.get("METRICS_ENABLED"), True)
        # /metrics is for the internal network only: the processes without HTTP serve it on
        # METRICS_HOST (loopback unless said otherwise, whatever BIND_HOST is; compose: the private
        # network, never published), and nginx never proxies /metrics of backend and websocket. With
        # METRICS_TOKEN set, every /metrics also wants `Authorization: Bearer <token>` (a host where
        # those ports are reachable).
        self.METRICS_HOST = (e.get("METRICS_HOST") or "").strip() or "127.0.0.1"
        self.METRICS_TOKEN = e.get("METRICS_TOKEN") or ""
        # The port each process without HTTP serves /metrics on (0: none).
        self.WORKER_METRICS_PORT = parse_int("WORKER_METRICS_PORT", e.get("WORKER_METRICS_PORT"), 9101)
        self.CONSUMER_METRICS_PORT = parse_int("CONSUMER_METRICS_PORT", e.get("CONSUMER_METRICS_PORT"), 9102)
        self.FEED_METRICS_PORT = parse_int("FEED_METRICS_PORT", e.get("FEED_METRICS_PORT"), 9103)
        self.XTS_BRIDGE_METRICS_PORT = parse_int("XTS_BRIDGE_METRICS_PORT", e.get("XTS_BRIDGE_METRICS_PORT"), 9104)
        # gunicorn's multiprocess metrics directory (wiped when the server starts); unset, each
        # server makes a fresh temporary one of its own.
        self.PROMETHEUS_MULTIPROC_DIR = e.get("PROMETHEUS_MULTIPROC_DIR") or ""
        # Worker, consumer, feed and bridge touch a file here from their main loops; `python -m
        # tradingapp.heartbeat check <process>` (compose's healthcheck) fails when it is older than
        # HEARTBEAT_MAX_AGE.
        self.HEARTBEAT_DIR = e.get("HEARTBEAT_DIR") or str(BASE_DIR / "instance" / "heartbeats")
        self.HEARTBEAT_MAX_AGE = parse_duration("HEARTBEAT_MAX_AGE", e.get("HEARTBEAT_MAX_AGE"), 60)
        # WebSocket feed: limits per socket/user and the intervals of auth, revocation and pings.
        self.WS_AUTH_TIMEOUT = parse_duration("WS_AUTH_TIMEOUT", e.get("WS_AUTH_TIMEOUT"), 5)
        self.WS_REVOCATION_CHECK = parse_duration("WS_REVOCATION_CHECK", e.get("WS_REVOCATION_CHECK"), 2)
        self.WS_PING_INTERVAL = parse_duration("WS_PING_INTERVAL", e.get("WS_PING_INTERVAL"), 20)
        self.WS_MAX_MESSAGE_BYTES = parse_int("WS_MAX_MESSAGE_BYTES", e.get("WS_MAX_MESSAGE_BYTES"), 16 * 1024)
        self.WS_MAX_INSTRUMENTS = parse_int("WS_MAX_INSTRUMENTS", e.get("WS_MAX_INSTRUMENTS"), 200)
        # Per user across every websocket process: each socket holds a lease in Redis, renewed while it
        # lives, so the sockets of a process killed without closing them free their places within WS_SLOT_LEASE.
        self.WS_MAX_SOCKETS_PER_USER = parse_int("WS_MAX_SOCKETS_PER_USER", e.get("WS_MAX_SOCKETS_PER_USER"), 10)
        self.WS_SLOT_LEASE = max(parse_duration("WS_SLOT_LEASE", e.get("WS_SLOT_LEASE"), 15), 1)
        self.WS_MAX_QUEUED_EVENTS = parse_int("WS_MAX_QUEUED_EVENTS", e.get("WS_MAX_QUEUED_EVENTS"), 1000)
        # A socket whose single send is blocked this long (client stopped reading) is dropped.
        self.WS_SEND_TIMEOUT = parse_duration("WS_SEND_TIMEOUT", e.get("WS_SEND_TIMEOUT"), 30)
        # simple-websocket pings every interval and drops a socket that missed the last pong;
        # frames far past our limit are refused at the protocol level before they are buffered.
        self.SOCK_SERVER_OPTIONS = {
            "ping_interval": self.WS_PING_INTERVAL,
            "max_message_size": max(self.WS_MAX_MESSAGE_BYTES * 16, 256 * 1024),
        }

    # -- derived URLs -------------------------------------------------------------------
    def libpq_params(self, hosts: list[tuple[str, int]] | None = None) -> dict[str, str]:
        """Keyword arguments for psycopg.connect (and the engine URL): every host of the list,
        read-write only when there are several, TLS files when set."""
        hosts = self.DB_HOSTS if hosts is None else hosts
        params = {
            "host": ",".join(host for host, _ in hosts),
            "port": ",".join(str(port) for _, port in hosts),
            "dbname": self.DB_NAME,
            "user": self.DB_USER,
            "sslmode": self.DB_SSL_MODE,
            "connect_timeout": str(self.DB_CONNECT_TIMEOUT),
        }
        if self.DB_PASSWORD:
            params["password"] = self.DB_PASSWORD
        for key, value in (
            ("sslrootcert", self.DB_SSL_ROOT_CERT),
            ("sslcert", self.DB_SSL_CERT),
            ("sslkey", self.DB_SSL_KEY),
        ):
            if value:
                params[key] = value
        return params

    def database_url(self, hosts: list[tuple[str, int]] | None = None, read_write: bool = True) -> str:
        """The SQLAlchemy URL: DB_HOST's servers (or `hosts`), the writable one when several."""
        if not self.DB_HOST:
            return f"sqlite:///{self.SQLITE_PATH}"
        hosts = self.DB_HOSTS if hosts is None else hosts
        auth = quote(self.DB_USER, safe="")
        if self.DB_PASSWORD:
            auth += ":" + quote(self.DB_PASSWORD, safe="")
        query = [("sslmode", self.DB_SSL_MODE), ("connect_timeout", str(self.DB_CONNECT_TIMEOUT))]
        query += [
            (key, value)
            for key, value in self.libpq_params(hosts).items()
            if key.startswith("ssl") and key != "sslmode"
        ]
        if len(hosts) == 1:
            ((host, port),) = hosts
            netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            netloc = ""
            if any(":" in host for host, _ in hosts):  # SQLAlchemy cannot read [v6]:port in a host list
                raise ConfigError("a DB_HOST list cannot hold IPv6 addresses; use host names")
            query = [("host", f"{host}:{port}") for host, port in hosts] + query
            if read_write:
                query.append(("target_session_attrs", "read-write"))
        text = "&".join(f"{key}={quote(value, safe='/:')}" for key, value in query)
        return f"postgresql+psycopg://{auth}@{netloc}/{quote(self.DB_NAME, safe='')}?{text}"

    @property
    def bind_address(self) -> str:
        """host:port for gunicorn's bind (an IPv6 host in brackets)."""
        host = f"[{self.BIND_HOST}]" if ":" in self.BIND_HOST else self.BIND_HOST
        return f"{host}:{self.PORT}"

    @property
    def is_postgres(self) -> bool:
        return bool(self.DB_HOST)

    @property
    def redis_url(self) -> str:
        auth = f":{quote(self.REDIS_PASSWORD, safe='')}@" if self.REDIS_PASSWORD else ""
        scheme = "rediss" if self.REDIS_SSL else "redis"
        url = f"{scheme}://{auth}{self.REDIS_HOST}:{self.REDIS_PORT}/{self.REDIS_DB}"
        if self.REDIS_SSL:
            url += "?ssl_cert_reqs=required"
            if self.REDIS_SSL_CA:
                url += "&ssl_ca_certs=" + quote(self.REDIS_SSL_CA, safe="/")
        return url

    @property
    def amqp_url(self) -> str:
        user = quote(self.RABBITMQ_USER, safe="")
        password = quote(self.RABBITMQ_PASSWORD, safe="")
        vhost = quote(self.RABBITMQ_VHOST, safe="")
        scheme = "amqps" if self.RABBITMQ_SSL else "amqp"
        return f"{scheme}://{user}:{password}@{self.RABBITMQ_HOST}:{self.RABBITMQ_PORT}/{vhost}"

    @property
    def amqp_ssl(self) -> dict | bool:
        """Kombu's `ssl` argument: False, or the server's certificate checked against RABBITMQ_SSL_CA
        (the system's CAs when empty) with its host name."""
        if not self.RABBITMQ_SSL:
            return False
        import ssl

        options: dict = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": self.RABBITMQ_HOST}
        if self.RABBITMQ_SSL_CA:
            options["ca_certs"] = self.RABBITMQ_SSL_CA
        return options

    def validate(self) -> None:
        """Development accepts defaults; production overrides this to refuse them."""

    def as_flask_config(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper()}


class TestConfig(Config):
    ENV_NAME = "test"
    TESTING = True

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        if not self._env.get("ORDER_JOB_TIMEOUT"):
            self.ORDER_JOB_TIMEOUT = 10
        # Where jobs/order_jobs.py SIGKILLs the worker once (after_claim, after_place, before_cancel;
        # `:raise` raises instead): the crash-safety tests. Never read outside APP_ENV=test.
        self.TEST_CRASH_POINT = self._env.get("TEST_CRASH_POINT", "")


class ProductionConfig(Config):
    ENV_NAME = "production"

    def validate(self) -> None:
        problems = []
        if self.JWT_SECRET == DEFAULT_JWT_SECRET or len(self.JWT_SECRET) < 32:
            problems.append("JWT_SECRET must be set to a random value of at least 32 characters")
        if not self.DB_HOST:
            problems.append("DB_HOST must be set (production runs on PostgreSQL)")
        if self.DB_PASSWORD.lower() in WEAK_PASSWORDS:
            problems.append("DB_PASSWORD is empty or a default")
        if self.REDIS_PASSWORD.lower() in WEAK_PASSWORDS:
            problems.append("REDIS_PASSWORD is empty or a default")
        if self.RABBITMQ_PASSWORD.lower() in WEAK_PASSWORDS:
            problems.append("RABBITMQ_PASSWORD is empty or a default")
        if self.BROKER == "xts" and not (self.XTS_API_URL and self.XTS_API_KEY and self.XTS_API_SECRET):
            problems.append("BROKER=xts needs XTS_API_URL, XTS_API_KEY and XTS_API_SECRET")
        if self.BROKER == "xts" and not self.SECRETS_ENCRYPTION_KEYS:
            problems.append(
                "BROKER=xts needs SECRETS_ENCRYPTION_KEYS (encrypts linked broker accounts' secrets; "
                f"generate a key with: {GENERATE_FERNET_KEY})"
            )
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))


CONFIGS = {"development": Config, "test": TestConfig, "production": ProductionConfig}


def load_config(env: dict[str, str] | None = None) -> Config:
    """The config class named by APP_ENV (development, test, production), validated."""
    source = os.environ if env is None else env
    name = (source.get("APP_ENV") or "development").lower()
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {sorted(CONFIGS)}, got {name!r}")
    config = CONFIGS[name](dict(source))
    config.validate()
    return config
