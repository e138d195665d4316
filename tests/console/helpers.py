"""In-process console for unit tests: fakeredis, a users file and Starlette's TestClient."""

from __future__ import annotations

import re
from pathlib import Path

import fakeredis
from starlette.testclient import TestClient

from worker.console import auth
from worker.console.app import create_app
from worker.keys import Keys
from worker.settings import Settings

PASSWORDS = {"ed": "editor-pass-1", "vi": "viewer-pass-1"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A console app over fakeredis with an editor ``ed`` and a viewer ``vi``."""

    def __init__(self, tmp_path: Path, **settings: object) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.users = tmp_path / "users.toml"
        auth.add_user(self.users, "ed", "editor", PASSWORDS["ed"])
        auth.add_user(self.users, "vi", "viewer", PASSWORDS["vi"])
        self.redis = fakeredis.FakeRedis()
        self.keys = Keys("t")
        self.settings = Settings(
            redis_prefix="t",
            console_users_file=self.users,
            **settings,  # type: ignore[arg-type]
        )
        self.app = create_app(self.settings, client=self.redis)

    def client(self, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.app, base_url=base_url)

    def signed_in(self, name: str) -> tuple[TestClient, str]:
        """A client signed in as ``name`` and its session's CSRF token."""
        client = self.client()
        token = csrf_of(client.get("/login").text)
        reply = client.post(
            "/login",
            data={"username": name, "password": PASSWORDS[name], "csrf_token": token},
            follow_redirects=False,
        )
        assert reply.status_code == 303, reply.text
        return client, csrf_of(client.get("/workflow").text)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)
