"""Accounts and session tokens of the simulated broker.

Tokens are JWTs (as XTS issues) living `ttl` seconds. With `single_session` on, a second login
of the same user to the same API ends the first session, as brokers do.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import jwt


@dataclass(frozen=True)
class Account:
    user_id: str
    app_key: str
    secret_key: str
    api: str  # interactive | marketdata
    investor: bool = True
    clients: tuple[str, ...] = ()

    @property
    def client_ids(self) -> tuple[str, ...]:
        return (self.user_id,) if self.investor else self.clients


@dataclass
class Session:
    token: str
    account: Account
    expires_at: float
    valid: bool = True


@dataclass
class Sessions:
    accounts: list[Account]
    clock: object  # () -> seconds
    ttl: float = 86400.0
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    by_token: dict[str, Session] = field(default_factory=dict)

    def authenticate(self, api: str, app_key: str, secret_key: str) -> Account | None:
        return next(
            (a for a in self.accounts if a.api == api and a.app_key == app_key and a.secret_key == secret_key), None
        )

    def open(self, account: Account) -> Session:
        """A new session; with single-session brokers the caller ends the old ones first."""
        now = self.clock()
        claims = {
            "userID": account.user_id,
            "publicKey": account.app_key,
            "memberID": "SIMULATOR",
            "source": "WEBAPI",
            "api": account.api,
            "jti": secrets.token_hex(8),
            "iat": int(now),
            "exp": int(now + self.ttl),
        }
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        session = self.by_token[token] = Session(token, account, now + self.ttl)
        return session

    def login(self, api: str, app_key: str, secret_key: str, single_session: bool) -> Session | None:
        account = self.authenticate(api, app_key, secret_key)
        if account is None:
            return None
        if single_session:
            self.expire(user_id=account.user_id, api=api)
        return self.open(account)

    def check(self, token: str | None, api: str) -> Session | None:
        session = self.by_token.get(token or "")
        if session is None or not session.valid or session.account.api != api:
            return None
        if self.clock() >= session.expires_at:
            session.valid = False
            return None
        return session

    def expire(self, user_id: str | None = None, api: str | None = None) -> list[Session]:
        """End the matching live sessions (all when no filter); returns them."""
        ended = []
        for session in self.by_token.values():
            if not session.valid:
                continue
            if (user_id is None or session.account.user_id == user_id) and (api is None or session.account.api == api):
                session.valid = False
                ended.append(session)
        return ended

    def live(self) -> list[dict]:
        now = self.clock()
        return [
            {"userID": s.account.user_id, "api": s.account.api, "expires_in": round(s.expires_at - now, 1)}
            for s in self.by_token.values()
            if s.valid and now < s.expires_at
        ]


def default_accounts(app_key: str, secret_key: str, md_app_key: str, md_secret_key: str) -> list[Account]:
    return [
        Account("SIMUSER1", app_key, secret_key, "interactive"),
        Account(
            "SIMDEALER",
            "sim-dealer-key",
            "sim-dealer-secret",
            "interactive",
            investor=False,
            clients=("CLIENT1", "CLIENT2"),
        ),
        Account("SIMUSER1", md_app_key, md_secret_key, "marketdata"),
    ]
