"""Console sign-in, sessions, roles, CSRF, throttling and the users file (in process)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.console.helpers import PASSWORDS, Console, csrf_of
from worker import audit
from worker.console import auth
from worker.errors import ConfigError


@pytest.fixture
def console(tmp_path: Path) -> Console:
    return Console(tmp_path)


def test_users_file_holds_argon2_hashes_never_passwords(console: Console) -> None:
    text = console.users.read_text()
    assert PASSWORDS["ed"] not in text and PASSWORDS["vi"] not in text
    assert text.count("$argon2id$") == 2
    assert stat.S_IMODE(console.users.stat().st_mode) == 0o600
    users = auth.read_users(console.users)
    assert {n: u.role for n, u in users.items()} == {"ed": "editor", "vi": "viewer"}
    assert auth.verify(users, "ed", PASSWORDS["ed"]) == auth.User("ed", "editor")
    assert auth.verify(users, "ed", PASSWORDS["vi"]) is None
    assert auth.verify(users, "nobody", PASSWORDS["ed"]) is None


def test_add_user_replaces_and_rejects_bad_input(console: Console) -> None:
    assert auth.add_user(console.users, "ed", "viewer", "new-pass") is False
    users = auth.read_users(console.users)
    assert users["ed"].role == "viewer" and auth.verify(users, "ed", "new-pass")
    bad = (("a b", "editor", "x"), ("ok", "admin", "x"), ("ok", "viewer", ""))
    for name, role, password in bad:
        with pytest.raises(ConfigError):
            auth.add_user(console.users, name, role, password)


def test_malformed_users_file_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "u.toml"
    bad.write_text('[users.x]\nrole = "editor"\n')
    with pytest.raises(ConfigError, match=r"users\.x needs password_hash"):
        auth.read_users(bad)
    bad.write_text('[users.x]\npassword_hash = "h"\nrole = "root"\n')
    with pytest.raises(ConfigError, match="viewer or editor"):
        auth.read_users(bad)


def test_unauthenticated_get_redirects_and_post_is_401(console: Console) -> None:
    client = console.client()
    reply = client.get("/workflow?x=1", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?next=/workflow%3Fx%3D1"
    assert client.post("/workflow", data={}).status_code == 401


def test_sign_in_sets_a_signed_httponly_lax_cookie_and_audits(console: Console) -> None:
    client = console.client()
    token = csrf_of(client.get("/login").text)
    reply = client.post(
        "/login",
        data={"username": "ed", "password": PASSWORDS["ed"], "csrf_token": token},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    page = client.get("/workflow")
    assert page.status_code == 200 and "Signed in as" in page.text
    [entry] = audit.read(console.redis, console.keys)
    assert (entry.user, entry.action) == ("ed", "login")
    assert PASSWORDS["ed"] not in str(entry.detail)


def test_cookie_is_secure_over_https_or_when_configured(tmp_path: Path) -> None:
    for console, base in (
        (Console(tmp_path / "a"), "https://testserver"),
        (Console(tmp_path / "b", console_secure_cookies=True), "http://testserver"),
    ):
        client = console.client(base)
        reply = client.get("/login")
        assert "secure" in reply.headers["set-cookie"].lower(), base


def test_wrong_password_is_refused_audited_and_not_logged(console: Console) -> None:
    client = console.client()
    token = csrf_of(client.get("/login").text)
    reply = client.post(
        "/login", data={"username": "ed", "password": "guess-1", "csrf_token": token}
    )
    assert reply.status_code == 401 and "Wrong username or password" in reply.text
    [entry] = audit.read(console.redis, console.keys)
    assert entry.action == "login.failed" and "guess-1" not in str(entry.detail)
    assert client.get("/workflow", follow_redirects=False).status_code == 303


def test_five_failures_throttle_even_the_right_password(console: Console) -> None:
    client = console.client()
    token = csrf_of(client.get("/login").text)
    for i in range(auth.MAX_LOGIN_FAILURES):
        data = {"username": "ed", "password": f"guess-{i}", "csrf_token": token}
        assert client.post("/login", data=data).status_code == 401
    data = {"username": "ed", "password": PASSWORDS["ed"], "csrf_token": token}
    reply = client.post("/login", data=data)
    assert reply.status_code == 429 and "Too many failed sign-ins" in reply.text
    # Another user from the same address is not blocked.
    data = {"username": "vi", "password": PASSWORDS["vi"], "csrf_token": token}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 303


def test_post_without_or_with_wrong_csrf_token_is_403(console: Console) -> None:
    client, token = console.signed_in("ed")
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf_token": token + "x"}).status_code == 403
    # Nothing happened: still signed in.
    assert client.get("/workflow").status_code == 200
    # A login POST needs it too.
    assert console.client().post("/login", data={"username": "ed"}).status_code == 403


def test_sign_out_ends_the_session(console: Console) -> None:
    client, token = console.signed_in("vi")
    reply = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/login"
    assert client.get("/workflow", follow_redirects=False).status_code == 303


def test_removed_user_loses_the_session(console: Console) -> None:
    client, _ = console.signed_in("vi")
    console.users.write_text(console.users.read_text().split('[users."vi"]')[0])
    assert client.get("/workflow", follow_redirects=False).status_code == 303


def test_next_only_follows_local_paths(console: Console) -> None:
    client = console.client()
    token = csrf_of(client.get("/login").text)
    data = {"username": "ed", "password": PASSWORDS["ed"], "csrf_token": token}
    reply = client.post("/login", data={**data, "next": "//evil.example/"}, follow_redirects=False)
    assert reply.headers["location"] == "/workflow"


def test_security_headers_on_every_response(console: Console) -> None:
    client = console.client()
    for path in ("/login", "/static/htmx.min.js", "/workflow", "/nope"):
        headers = client.get(path, follow_redirects=False).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    console = Console(tmp_path)
    first = console.redis.get(console.keys.console_secret)
    assert first and len(first) > 40
    assert auth.session_secret(console.redis, console.keys, None) == first.decode()
    assert auth.session_secret(console.redis, console.keys, "configured") == "configured"
