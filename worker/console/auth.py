"""Console users, sessions, roles, CSRF tokens and login throttling.

Users live in a TOML file (``CIO_CONSOLE_USERS_FILE``): ``[users.<name>] password_hash =
"<argon2>"``, ``role = "viewer" | "editor"``. The signed session cookie holds only the
user's name and a CSRF token; the role is read from the file on every request, so
removing a user or changing a role takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from worker.errors import ConfigError
from worker.keys import Keys
from worker.workflow import tomlwrite

ROLES = ("viewer", "editor")
# viewer < editor: a role may do what every lower one may.
ROLE_RANK = {"viewer": 1, "editor": 2}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Failed sign-ins per user and address before further attempts get 429, and for how long.
MAX_LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 300

_hasher = PasswordHasher()
# Verified against when the user does not exist, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in console user."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this user's role includes ``role`` (an editor may view)."""
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One entry of the users file."""

    password_hash: str
    role: str


class NeedsLogin(Exception):
    """Raised by ``require`` on a GET without a session: the app redirects to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


# -- the users file -----------------------------------------------------------------------

_cache: dict[Path, tuple[float, dict[str, UserRecord]]] = {}


def read_users(path: Path | None) -> dict[str, UserRecord]:
    """The users in the file (cached until it changes); none when no file is set or it is
    missing. A malformed file is a ConfigError naming it."""
    if path is None:
        return {}
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return {}
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    users = parse_users(path.read_text(encoding="utf-8"), str(path))
    _cache[path] = (mtime, users)
    return users


def parse_users(text: str, where: str = "users file") -> dict[str, UserRecord]:
    """Users from the file's text; ConfigError naming the first bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    table = data.get("users", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [users] must be a table")
    users: dict[str, UserRecord] = {}
    for name, entry in table.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("password_hash"), str):
            raise ConfigError(f"{where}: users.{name} needs password_hash")
        role = entry.get("role", "viewer")
        if role not in ROLES:
            raise ConfigError(f"{where}: users.{name}.role must be viewer or editor")
        users[name] = UserRecord(entry["password_hash"], role)
    return users


def render_users(users: dict[str, UserRecord]) -> str:
    """The users file's text for ``users``."""
    lines = ["# Console users (cio-relay console add-user). Argon2 hashes, never passwords.\n"]
    for name, record in sorted(users.items()):
        lines.append(f"\n[users.{tomlwrite.key(name)}]\n")
        lines.append(f"password_hash = {tomlwrite.string(record.password_hash)}\n")
        lines.append(f"role = {tomlwrite.string(record.role)}\n")
    return "".join(lines)


def add_user(path: Path, name: str, role: str, password: str) -> bool:
    """Add or replace one user in the file (created, mode 0600); True when it was new."""
    if not NAME_PATTERN.match(name):
        raise ConfigError("user names are 1-64 letters, digits, '_', '.', '@' or '-'")
    if role not in ROLES:
        raise ConfigError("role must be viewer or editor")
    if not password:
        raise ConfigError("the password must not be empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    users = dict(read_users(path)) if path.exists() else {}
    new = name not in users
    users[name] = UserRecord(_hasher.hash(password), role)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(render_users(users))
    os.replace(tmp, path)
    return new


def verify(users: dict[str, UserRecord], name: str, password: str) -> User | None:
    """The user when the password matches their Argon2 hash, else None (same cost either way)."""
    record = users.get(name)
    try:
        _hasher.verify(record.password_hash if record else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(name, record.role) if record else None


# -- throttling -----------------------------------------------------------------------------


def _who(name: str, address: str) -> str:
    return hashlib.sha256(f"{name}\x00{address}".encode()).hexdigest()[:32]


def login_blocked(client: redis.Redis, keys: Keys, name: str, address: str) -> int:
    """Seconds until this user may try again from this address; 0 when not blocked."""
    key = keys.login_failures(_who(name, address))
    pipe = client.pipeline()
    pipe.get(key)
    pipe.ttl(key)
    count, ttl = pipe.execute()
    if count is not None and int(count) >= MAX_LOGIN_FAILURES:
        return max(1, int(ttl))
    return 0


def note_failure(client: redis.Redis, keys: Keys, name: str, address: str) -> None:
    """Count one failed sign-in; the count expires LOGIN_WINDOW_S after the first."""
    key = keys.login_failures(_who(name, address))
    pipe = client.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, LOGIN_WINDOW_S, nx=True)
    pipe.execute()


def clear_failures(client: redis.Redis, keys: Keys, name: str, address: str) -> None:
    """Forget the failures once the user signed in."""
    client.delete(keys.login_failures(_who(name, address)))


# -- sessions, roles and CSRF --------------------------------------------------------------


def session_secret(client: redis.Redis, keys: Keys, configured: str | None) -> str:
    """CIO_CONSOLE_SECRET, else the one kept in Redis (generated by the first console)."""
    if configured:
        return configured
    client.set(keys.console_secret, secrets.token_urlsafe(48), nx=True)
    stored = client.get(keys.console_secret)
    assert stored is not None
    return stored.decode() if isinstance(stored, bytes) else str(stored)


def users_file(request: Request) -> Path | None:
    path = request.app.state.settings.console_users_file
    return Path(path) if path else None


def current_user(request: Request) -> User | None:
    """The signed-in user, or None (also when they were removed from the users file)."""
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    record = read_users(users_file(request)).get(name)
    return User(name, record.role) if record else None


def sign_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token too)."""
    request.session.clear()
    request.session["user"] = user.name
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def require(request: Request, role: str = "viewer") -> User:
    """The signed-in user when their role includes ``role``.

    Without a session a GET is redirected to /login (``NeedsLogin``) and anything else
    gets 401; a user whose role is too low gets 403.
    """
    user = current_user(request)
    if user is None:
        if request.method in ("GET", "HEAD"):
            path = request.url.path
            if request.url.query:
                path += "?" + request.url.query
            raise NeedsLogin(path)
        raise HTTPException(401, "sign in first")
    if not user.may(role):
        raise HTTPException(403, f"this needs the {role} role; you are a {user.role}")
    return user


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> FormData:
    """The POSTed form when it carries this session's CSRF token (field ``csrf_token`` or
    header ``X-CSRF-Token``); 403 otherwise."""
    form = await request.form()
    sent: Any = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise HTTPException(403, "missing CSRF token: reload the page and try again")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "wrong CSRF token: reload the page and try again")
    return form


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
