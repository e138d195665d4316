"""The sources file: write keys, kinds and browser origins, refused whole when malformed."""

from __future__ import annotations

import pytest

from worker.collector.cors import Cors
from worker.collector.sources import Source, Sources, load_sources, parse_sources
from worker.errors import ConfigError

WEB = {"kind": "client", "write_key": "web-public-key", "origins": ["https://shop.example/"]}
API = {"kind": "server", "write_key_env": "API_KEY_VAR"}
ENV = {"API_KEY_VAR": "server-secret-key"}


def sources(**tables: object) -> Sources:
    return parse_sources({"sources": tables}, ENV, "sources.toml")


def error(**tables: object) -> str:
    with pytest.raises(ConfigError) as info:
        sources(**tables)
    return str(info.value)


def test_keys_find_their_source() -> None:
    """Each key finds its own source; unknown, empty and missing keys find none."""
    found = sources(web=WEB, api=API)
    assert found.by_key("web-public-key").name == "web"  # type: ignore[union-attr]
    assert found.by_key("server-secret-key").kind == "server"  # type: ignore[union-attr]
    assert found.by_key("server-secret-ke") is None
    assert found.by_key("") is None and found.by_key(None) is None


def test_origins_are_normalised_and_checked() -> None:
    """A trailing slash does not matter; other origins and server sources are not allowed."""
    web = sources(web=WEB).by_key("web-public-key")
    assert web is not None
    assert web.allows_origin("https://shop.example")
    assert not web.allows_origin("https://evil.example")
    assert not Source("api", "server", "x" * 8).allows_origin("https://shop.example")
    assert Source("any", "client", "y" * 8, ("*",)).allows_origin("https://anything.example")


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        ({"web": {**WEB, "kind": "browser"}}, 'kind must be "client" or "server"'),
        ({"web": {**WEB, "write_key": "short"}}, "at least 8"),
        ({"web": {"kind": "client", "origins": []}}, "exactly one of write_key"),
        ({"api": {"kind": "server", "write_key_env": "NOT_SET"}}, "NOT_SET is not set"),
        ({"api": {**API, "origins": ["https://x.example"]}}, "client sources only"),
        ({"web": {**WEB, "origins": ["shop.example"]}}, "must start with http"),
        ({"web": {**WEB, "origins": ["https://shop.example/path"]}}, "must not have a path"),
        ({"web": {**WEB, "colour": "red"}}, "unknown key 'colour'"),
        ({"a": WEB, "b": {**WEB}}, "share a write key"),
    ],
)
def test_malformed_sources_are_refused(tables: dict[str, object], words: str) -> None:
    """Each mistake stops the collector with a sentence naming the source and the rule."""
    assert words in error(**tables)


def test_errors_never_show_the_key() -> None:
    """A bad key is described, never echoed (a server key is a secret)."""
    assert "secret:key" not in error(api={"kind": "server", "write_key": "secret:key-1"})


def test_no_file_means_no_sources() -> None:
    """Without CIO_SOURCES_FILE nothing is accepted."""
    assert len(load_sources(None)) == 0


def test_example_file_loads() -> None:
    """config/sources.toml, the documented example, is a valid sources file."""
    example = load_sources("config/sources.toml")
    assert {s.kind for s in example.sources} == {"client", "server"}


def test_unreadable_file_is_named(tmp_path) -> None:
    """A missing or malformed file names itself."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_sources(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sources.web\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_sources(bad)


def test_cors_answers_only_allowed_origins() -> None:
    """Preflights get the allowed headers and a max age; other origins get nothing."""
    cors = Cors(sources(web=WEB, api=API))
    ok = cors.preflight_headers("https://shop.example", "authorization, x-retry-count")
    assert ok["Access-Control-Allow-Origin"] == "https://shop.example"
    assert ok["Access-Control-Allow-Headers"] == "authorization, x-retry-count"
    assert int(ok["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Origin" not in cors.preflight_headers("https://evil.example", "")
    assert cors.headers(None) == {}
