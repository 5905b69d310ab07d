"""Sessions on the running stack's API, for what a test sets up or checks beside the UI."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from tests.support import wait_until


@dataclass
class ApiUser:
    """A user of the running stack: credentials and an authenticated requests session."""

    base_url: str
    email: str
    password: str
    http: requests.Session = field(default_factory=requests.Session)
    user_id: str = ""

    def login(self) -> ApiUser:
        response = requests.post(f"{self.base_url}/api/v1/auth/login",
                                 json={"email": self.email, "password": self.password}, timeout=10)  # fmt: skip
        assert response.status_code == 200, response.text
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.user_id = self.get("/auth/me")["id"]
        return self

    def call(self, method: str, path: str, expected: int | tuple[int, ...] = (200, 201, 202, 204), **kwargs):
        response = self.http.request(method, f"{self.base_url}/api/v1{path}", timeout=10, **kwargs)
        allowed = (expected,) if isinstance(expected, int) else expected
        assert response.status_code in allowed, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: dict, **kwargs):
        return self.call("POST", path, json=body, **kwargs)

    def put(self, path: str, body: dict | None = None, **kwargs):
        return self.call("PUT", path, json=body, **kwargs)

    def orders(self) -> list[dict]:
        return self.get("/orders")["items"]

    def wait_order(self, order_id: str, status: str) -> dict:
        return wait_until(
            lambda: (o := self.get(f"/orders/{order_id}"))["status"] == status and o,
            timeout=20,
            details=lambda: f"order {order_id}: {self.get(f'/orders/{order_id}')}",
        )
