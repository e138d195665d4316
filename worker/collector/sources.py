"""The collector's sources (``CIO_SOURCES_FILE``): who may send, with which write key, from
which browser origins. Read once at start; a malformed file stops the collector with its
reason."""

from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from worker.errors import ConfigError

SourceKind = Literal["client", "server"]
KINDS: tuple[str, ...] = ("client", "server")
SOURCE_KEYS = ("kind", "write_key", "write_key_env", "origins")
MIN_KEY_CHARS = 8


@dataclass(frozen=True, slots=True)
class Source:
    """One sender: a browser site (``client``: its key is public) or a backend (``server``)."""

    name: str
    kind: SourceKind
    write_key: str = field(repr=False)
    origins: tuple[str, ...] = ()

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser page on ``origin`` may call the collector with this key."""
        if self.kind != "client":
            return False
        return "*" in self.origins or origin.rstrip("/") in self.origins


@dataclass(frozen=True, slots=True)
class Sources:
    """Every configured source; keys are compared in constant time."""

    sources: tuple[Source, ...] = ()

    def by_key(self, key: str | None) -> Source | None:
        """The source whose write key is ``key``, comparing against every key so that the
        time taken says nothing about which one (or how much of one) matched."""
        if not key:
            return None
        given = key.encode("utf-8", "surrogateescape")
        found = None
        for source in self.sources:
            if hmac.compare_digest(given, source.write_key.encode()):
                found = source
        return found

    def __len__(self) -> int:
        return len(self.sources)


def load_sources(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Sources:
    """Read the sources file; no file configured means no source (every request gets 401)."""
    if path is None:
        return Sources()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"CIO_SOURCES_FILE: cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"CIO_SOURCES_FILE: {path}: {exc}") from None
    return parse_sources(data, os.environ if environ is None else environ, str(path))


def parse_sources(data: Mapping[str, Any], environ: Mapping[str, str], where: str) -> Sources:
    """Check the parsed TOML and build the sources; ConfigError names the first problem."""
    unknown = [k for k in data if k != "sources"]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (expected [sources.<name>])")
    tables = data.get("sources", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{where}: sources must be tables ([sources.<name>])")
    built = [_source(name, spec, environ, where) for name, spec in tables.items()]
    keys = [s.write_key for s in built]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ConfigError(
                f"{where}: sources {built[keys.index(key)].name!r} and {built[i].name!r} "
                "share a write key"
            )
    return Sources(tuple(built))


def _source(name: str, spec: Any, environ: Mapping[str, str], where: str) -> Source:
    label = f"{where}: source {name!r}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{label} must be a table")
    for key in spec:
        if key not in SOURCE_KEYS:
            raise ConfigError(f"{label}: unknown key {key!r} (expected {', '.join(SOURCE_KEYS)})")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ConfigError(f'{label}: kind must be "client" or "server"')
    key = _write_key(spec, environ, label)
    origins = spec.get("origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        raise ConfigError(
            f"{label}: origins must be a list of origins such as https://shop.example"
        )
    if origins and kind != "client":
        raise ConfigError(f"{label}: origins apply to client sources only")
    return Source(name, kind, key, _origins(origins, label))


def _write_key(spec: Mapping[str, Any], environ: Mapping[str, str], label: str) -> str:
    if ("write_key" in spec) == ("write_key_env" in spec):
        raise ConfigError(f"{label}: set exactly one of write_key and write_key_env")
    if "write_key_env" in spec:
        env_name = spec["write_key_env"]
        if not isinstance(env_name, str) or not env_name:
            raise ConfigError(f"{label}: write_key_env must name an environment variable")
        key = environ.get(env_name, "")
        if not key:
            raise ConfigError(f"{label}: the environment variable {env_name} is not set")
    else:
        key = spec["write_key"]
        if not isinstance(key, str):
            raise ConfigError(f"{label}: write_key must be a string")
    # Never echo the key itself: a server source's key is a secret.
    if len(key) < MIN_KEY_CHARS or not key.isprintable() or key != key.strip() or ":" in key:
        raise ConfigError(
            f"{label}: the write key must be at least {MIN_KEY_CHARS} printable characters, "
            "without spaces at either end or ':'"
        )
    return key


def _origins(origins: Sequence[str], label: str) -> tuple[str, ...]:
    out = []
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(f"{label}: origin {origin!r} must start with http:// or https://")
        if origin != "*" and origin.rstrip("/").count("/") > 2:
            raise ConfigError(f"{label}: origin {origin!r} must not have a path")
        out.append(origin.rstrip("/"))
    return tuple(out)
