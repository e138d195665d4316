"""The one place that turns settings into Redis clients: Sentinel settings, broker URL."""

from __future__ import annotations

import kombu
import pytest
import redis.asyncio as aioredis
import redis.sentinel

from worker.app import celery_config
from worker.errors import ConfigError
from worker.redisconn import (
    broker_transport_options,
    broker_url,
    connect,
    connect_async,
    describe_target,
    url_auth,
)
from worker.settings import Settings, load_settings, parse_host_ports

HA = {
    "redis_url": "redis://:s3cret%2Fpw@ignored.invalid:6390/4",
    "redis_sentinels": "10.0.0.1:26379, sentinel-b:26380,[::1]:26381",
    "redis_master_name": "relay",
}


def test_host_port_list_is_parsed_with_v6_and_blanks() -> None:
    assert parse_host_ports(" a:1, ,[::1]:26379,b.example:65535 ") == [
        ("a", 1),
        ("::1", 26379),
        ("b.example", 65535),
    ]
    assert parse_host_ports("") == []


@pytest.mark.parametrize("bad", ["a", "a:", ":1", "a:0", "a:70000", "a:x"])
def test_bad_sentinel_item_stops_the_process_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIO_REDIS_SENTINELS", f"ok:26379,{bad}")
    with pytest.raises(ConfigError, match="CIO_REDIS_SENTINELS"):
        load_settings()


def test_url_keeps_db_and_password_for_sentinel() -> None:
    assert url_auth(HA["redis_url"]) == {"db": 4, "password": "s3cret/pw"}
    assert url_auth("redis://u:p@h/0") == {"db": 0, "username": "u", "password": "p"}
    assert url_auth("rediss://h:1/2") == {"db": 2, "ssl": True}


def test_without_sentinels_the_url_is_used_as_is() -> None:
    s = Settings(redis_url="redis://127.0.0.1:6399/2", redis_prefix="p")
    assert broker_url(s) == "redis://127.0.0.1:6399/2"
    assert broker_transport_options(s) == {
        "global_keyprefix": "p:celery:",
        "visibility_timeout": 3600,
    }
    assert describe_target(s) == "127.0.0.1:6399 db 2"
    client = connect(s)
    assert client.connection_pool.connection_kwargs["port"] == 6399
    assert not isinstance(client.connection_pool, redis.sentinel.SentinelConnectionPool)


def test_sentinel_broker_url_lists_every_sentinel_with_password_and_db() -> None:
    s = Settings(**HA)
    assert broker_url(s) == (
        "sentinel://:s3cret%2Fpw@10.0.0.1:26379/4;"
        "sentinel://:s3cret%2Fpw@sentinel-b:26380/4;"
        "sentinel://:s3cret%2Fpw@[::1]:26381/4"
    )
    options = broker_transport_options(s)
    assert options["master_name"] == "relay"
    assert options["global_keyprefix"] == "cio:celery:"
    assert "password" not in options["sentinel_kwargs"]
    config = celery_config(s)
    assert config["broker_url"] == broker_url(s)
    assert config["broker_transport_options"] == options
    # kombu reads it as its sentinel transport with three alternates, the password and db.
    conn = kombu.Connection(config["broker_url"], transport_options=options)
    assert conn.transport_cls == "sentinel"
    assert len(conn.alt) == 3
    assert conn.password == "s3cret/pw"
    assert conn.virtual_host == "4"
    assert "ignored.invalid" not in describe_target(s)
    assert "s3cret" not in describe_target(s)


def test_sentinel_clients_ask_sentinels_for_the_primary_with_the_url_db_and_password() -> None:
    s = Settings(**HA)
    client = connect(s)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "relay"
    assert pool.connection_kwargs["db"] == 4
    assert pool.connection_kwargs["password"] == "s3cret/pw"
    sentinels = pool.sentinel_manager.sentinels
    assert [c.connection_pool.connection_kwargs["port"] for c in sentinels] == [26379, 26380, 26381]
    assert all(not c.connection_pool.connection_kwargs.get("password") for c in sentinels)

    aclient = connect_async(s)
    assert isinstance(aclient, aioredis.Redis)
    assert aclient.connection_pool.service_name == "relay"  # type: ignore[attr-defined]
    assert aclient.connection_pool.connection_kwargs["db"] == 4
