"""A real Redis HA set for tests: a primary, a replica and three Sentinels on free ports."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.integration.conftest import free_port, wait_until
from worker.redisconn import REDIS_CONF

MASTER_NAME = "relaytest"
# Sentinels call the primary down after this much silence (the default is 30 s).
DOWN_AFTER_MS = 1000


class RedisNode:
    """One redis-server (primary or replica) with its own data dir and log file."""

    def __init__(
        self, root: Path, name: str, replica_of: int | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.extra = extra
        self.port = free_port()
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.replica_of = replica_of
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisNode:
        # A private copy of the project's config: Sentinel rewrites the config file of a
        # node whose role it changes.
        conf = self.dir / "redis.conf"
        conf.write_text(REDIS_CONF.read_text())
        binary = shutil.which("redis-server") or "redis-server"
        argv = [binary, str(conf), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.dir)]
        argv += ["--logfile", str(self.dir / "redis.log"), *self.extra]
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        client = self.client()
        wait_until(lambda: _pings(client), 10, f"redis {self.name}")
        return self

    def wait_replicas(self, count: int, timeout_s: float = 20) -> None:
        """Wait until ``count`` replicas are online (synced) behind this node."""

        def online() -> bool:
            try:
                info = self.client().info("replication")
            except redis.RedisError:
                return False
            states = [info.get(f"slave{i}", {}).get("state") for i in range(count)]
            return states == ["online"] * count

        wait_until(online, timeout_s, f"{count} replica(s) of {self.name} online")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        """SIGKILL: no AOF flush, no goodbye to the replica, as a crashed host."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Sentinel:
    """``redis-server --sentinel`` monitoring the primary, with its own writable config."""

    def __init__(self, root: Path, index: int, primary_port: int) -> None:
        self.port = free_port()
        self.dir = root / f"sentinel{index}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sentinel:
        binary = shutil.which("redis-server") or "redis-server"
        self.proc = subprocess.Popen([binary, str(self.conf), "--sentinel"])
        client = redis.Redis(port=self.port, socket_timeout=2)
        wait_until(lambda: _pings(client), 10, "sentinel")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Cluster:
    """Primary + replica + three Sentinels; ``env`` points the relay at them."""

    def __init__(self, root: Path) -> None:
        self.primary = RedisNode(root, "primary")
        self.replica = RedisNode(root, "replica", replica_of=self.primary.port)
        self.sentinels = [Sentinel(root, i, self.primary.port) for i in range(3)]

    def start(self) -> Cluster:
        self.primary.start()
        self.replica.start()
        self.primary.wait_replicas(1)
        for s in self.sentinels:
            s.start()
        # Sentinels poll INFO every 10 s: on a busy machine discovery can take several rounds.
        wait_until(self._sentinels_see_replica, 60, "Sentinels to find the replica")
        return self

    def env(self, db: int = 0) -> dict[str, str]:
        """CIO_* for the relay. The URL's host is a closed port: it must never be dialled."""
        return {
            "CIO_REDIS_URL": f"redis://127.0.0.1:{free_port()}/{db}",
            "CIO_REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "CIO_REDIS_MASTER_NAME": MASTER_NAME,
        }

    def master_port(self) -> int:
        """The primary's port as the Sentinels report it now."""
        sentinel = redis.Redis(port=self.sentinels[0].port, socket_timeout=2)
        _host, port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def _sentinels_see_replica(self) -> bool:
        try:
            for s in self.sentinels:
                client = redis.Redis(port=s.port, socket_timeout=2)
                if not client.sentinel_slaves(MASTER_NAME):
                    return False
                if len(client.sentinel_sentinels(MASTER_NAME)) < 2:
                    return False
        except redis.RedisError:
            return False
        return True

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        self.replica.stop()
        self.primary.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def wait_for_failover(cluster: Cluster, old_port: int, timeout_s: float = 30.0) -> int:
    """Wait until the Sentinels name a new primary; returns its port."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            port = cluster.master_port()
        except redis.RedisError:
            port = old_port
        if port != old_port:
            return port
        time.sleep(0.2)
    raise AssertionError("Sentinels did not promote the replica")
