"""Which XTS account a call goes through. The caller resolves a user's credentials (the accounts
service: the user's linked account, else the deployment's) and hands them in as XtsCredentials;
they become an XtsAccount with the deployment's URL, market-data prefix and timeout.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from config import ConfigError
from tradingapp.brokers.xts.session import XtsAccount


@dataclass(frozen=True)
class XtsCredentials:
    """The XTS account one user's orders go through; an empty string means none (no market-data
    app, an investor account without client id)."""

    app_key: str
    secret_key: str = field(repr=False)
    client_id: str = ""
    md_app_key: str = ""
    md_secret_key: str = field(default="", repr=False)
    source: Literal["user", "default"] = "default"
    account_id: uuid.UUID | None = None  # the linked account, when source is "user"


class CredentialsUnavailable(RuntimeError):
    """No XTS credentials for a user: nothing linked and no default configured, or a linked secret
    that cannot be decrypted. The message says which, never a secret."""


CredentialsFor = Callable[[uuid.UUID], XtsCredentials]  # raises CredentialsUnavailable


def env_credentials(config) -> XtsCredentials:
    """The deployment's own keys (XTS_API_KEY, XTS_API_SECRET, XTS_CLIENT_ID, the market-data app)."""
    return XtsCredentials(
        app_key=config["XTS_API_KEY"],
        secret_key=config["XTS_API_SECRET"],
        client_id=config["XTS_CLIENT_ID"],
        md_app_key=config["XTS_MD_API_KEY"],
        md_secret_key=config["XTS_MD_API_SECRET"],
    )


def env_account(config) -> XtsAccount:
    """The deployment's account; refused (ConfigError) without its URL, app key and secret."""
    missing = [name for name in ("XTS_API_URL", "XTS_API_KEY", "XTS_API_SECRET") if not config[name]]
    if missing:
        raise ConfigError(f"BROKER=xts needs {', '.join(missing)}")
    return account_at(config, env_credentials(config))


def account_of(config, credentials: XtsCredentials) -> XtsAccount:
    """The account of credentials handed in: the deployment's for its default keys."""
    if credentials.source == "default":
        return env_account(config)
    return account_at(config, credentials)


def account_at(config, credentials: XtsCredentials) -> XtsAccount:
    """Credentials at the deployment's XTS: its URL (XTS_API_URL, from the environment only: a user
    never names the server the platform calls), market-data prefix and timeout."""
    return XtsAccount(
        url=config["XTS_API_URL"],
        app_key=credentials.app_key,
        secret_key=credentials.secret_key,
        client_id=credentials.client_id,
        md_app_key=credentials.md_app_key,
        md_secret_key=credentials.md_secret_key,
        md_prefix=config["XTS_MARKET_DATA_PREFIX"],
        timeout=float(config["XTS_TIMEOUT"]),
    )
