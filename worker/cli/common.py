"""What most commands need: settings, a Redis client and the key names."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import redis

from worker.keys import Keys
from worker.redisconn import connect
from worker.settings import Settings, get_settings


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    redis: redis.Redis
    keys: Keys


def context() -> Context:
    """Settings read once, a Redis client, and the key names under the configured prefix."""
    settings = get_settings()
    return Context(settings, connect(settings), Keys(settings.redis_prefix))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per line, for scripts"
    )
