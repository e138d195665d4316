"""The relay's settings: one pydantic-settings class, read once at start from ``CIO_*``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import ConfigError

REGION_HOSTS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}


class Settings(BaseSettings):
    """Every setting, documented with its default in ``config/.env.example``."""

    model_config = SettingsConfigDict(env_prefix="CIO_", extra="ignore", frozen=True)

    # Customer.io destination
    site_id: str | None = None
    api_key: SecretStr | None = None
    region: Literal["us", "eu"] = "us"
    track_url: str | None = None
    identify_by: str = Field(default="identify_by_email", min_length=1)
    unidentified: Literal["anonymous", "dead_letter"] = "anonymous"
    page_name_overflow: Literal["dead_letter", "strip_query", "truncate"] = "dead_letter"
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field(default="cio", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    redis_sentinels: str = ""
    redis_master_name: str = Field(default="mymaster", min_length=1)
    redis_min_replicas: int = Field(default=0, ge=0)
    redis_replica_timeout_s: float = Field(default=5.0, gt=0, le=30)

    # Workflow
    workflow_file: Path | None = None

    # Delivery policy
    max_rps: int = Field(default=100, ge=1)
    max_attempts: int = Field(default=20, ge=1)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_cap_s: float = Field(default=300.0, gt=0)
    retry_after_cap_s: float = Field(default=900.0, gt=0)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    batch_linger_ms: int = Field(default=100, ge=0, le=5_000)
    drain_budget_s: float = Field(default=5.0, gt=0)
    tick_s: float = Field(default=1.0, gt=0)
    idle_listen_s: float = Field(default=30.0, gt=0)
    reclaim_idle_s: float = Field(default=30.0, gt=0)
    max_event_bytes: int = Field(default=32_768, ge=256)
    identity_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    activity_max: int = Field(default=10_000, ge=100)

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # Flower
    flower_user: str | None = None
    flower_password: SecretStr | None = None
    flower_address: str = "127.0.0.1"
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_max_tasks: int = Field(default=50_000, ge=1_000)

    # HTTP collector (``cio-relay collect``)
    sources_file: Path | None = None
    collect_address: str = "127.0.0.1"
    collect_port: int = Field(default=8088, ge=1, le=65535)
    collect_workers: int = Field(default=0, ge=0, le=64)
    collect_max_lag: int = Field(default=1_000_000, ge=1)
    collect_max_request_bytes: int = Field(default=512_000, ge=1024)
    collect_ip: bool = False

    # Web console (``cio-relay console``)
    console_address: str = "127.0.0.1"
    console_port: int = Field(default=8089, ge=1, le=65535)
    console_users_file: Path | None = None
    console_secret: SecretStr | None = None
    console_secure_cookies: bool = False

    # Prometheus metrics (``cio-relay metrics``)
    metrics_address: str = "127.0.0.1"
    metrics_port: int = Field(default=9808, ge=1, le=65535)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: str) -> str:
        parse_host_ports(value)
        return value.strip()

    @field_validator("track_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def base_url(self) -> str:
        """The Track API host: the override when set, else the region's host."""
        return self.track_url or REGION_HOSTS[self.region]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """The Sentinels to ask for the primary; empty: dial ``redis_url`` directly."""
        return parse_host_ports(self.redis_sentinels)

    def require_credentials(self) -> tuple[str, SecretStr]:
        """Site ID and API key, or a ConfigError naming the one that is missing."""
        if not self.site_id:
            raise ConfigError("CIO_SITE_ID is not set (your Customer.io Site ID)")
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ConfigError("CIO_API_KEY is not set (your Customer.io Track API key)")
        return self.site_id, self.api_key


def parse_host_ports(text: str) -> list[tuple[str, int]]:
    """A comma-separated ``host:port`` list (``[v6]:port`` too) as pairs; ValueError naming
    the first item that is not one."""
    pairs: list[tuple[str, int]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
        pairs.append((host, int(port)))
    return pairs


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first invalid setting by its environment name."""
    first = exc.errors()[0]
    name = "CIO_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
    # Never echo the input: it may be a secret.
    return f"invalid setting {name}: {first['msg']}"


def load_settings() -> Settings:
    """Read the environment once; raise ConfigError with one line naming a bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
