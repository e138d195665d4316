"""``cio-relay pause``, ``resume`` and ``check``: the destination's pause switch and health."""

from __future__ import annotations

import argparse
import getpass

import redis

from worker import pausing
from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json
from worker.client import TrackClient
from worker.errors import ConfigError, DeliveryError, WorkflowError
from worker.redisconn import REFUSALS, describe_target, write_refusal
from worker.workflow.loader import describe_error, load_workflow_file
from worker.workflow.store import WorkflowStore


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    pause = subparsers.add_parser(
        "pause", help="pause delivery for every replica until `cio-relay resume`"
    )
    pause.add_argument("--who", default=None, help="who paused, for the reason (default: $USER)")
    add_json_flag(pause)
    pause.set_defaults(func=pause_cmd)

    resume = subparsers.add_parser("resume", help="resume delivery after a pause (401/403/3xx)")
    add_json_flag(resume)
    resume.set_defaults(func=resume_cmd)

    check = subparsers.add_parser(
        "check", help="verify credentials, region, Redis and the workflow; non-zero on failure"
    )
    add_json_flag(check)
    check.set_defaults(func=check_cmd)


def pause_cmd(args: argparse.Namespace) -> int:
    ctx = context()
    who = args.who or f"cli:{getpass.getuser()}"
    changed = pausing.pause_by_hand(ctx.redis, ctx.keys, who)
    reason = pausing.reason(ctx.redis, ctx.keys)
    if args.json:
        emit_json({"paused": True, "changed": changed, "reason": reason})
    elif changed:
        print(f"delivery paused ({reason}); events wait in the inbox until `cio-relay resume`")
    else:
        print(f"delivery was already paused: {reason}")
    return 0


def resume_cmd(args: argparse.Namespace) -> int:
    ctx = context()
    reason = pausing.resume(ctx.redis, ctx.keys)
    if args.json:
        emit_json({"resumed": reason is not None, "was_paused_for": reason})
    elif reason:
        print(f"resumed (was paused: {reason})")
    else:
        print("delivery was not paused")
    return 0


def check_cmd(args: argparse.Namespace) -> int:
    ctx = context()
    results: list[tuple[str, bool, str]] = []

    try:
        site_id, api_key = ctx.settings.require_credentials()
        client = TrackClient(ctx.settings.base_url, site_id, api_key)
        region = client.check_region()
        results.append(
            ("credentials", True, f"{ctx.settings.base_url} region={region.get('region')}")
        )
    except (ConfigError, DeliveryError) as exc:
        results.append(("credentials", False, str(exc)))

    try:
        results.append(_redis_check(ctx.redis, ctx.keys.prefix + ":write_probe"))
    except Exception as exc:
        where = describe_target(ctx.settings)
        results.append(("redis", False, f"{where}: {type(exc).__name__}: {exc}"))

    path = ctx.settings.workflow_file
    try:
        if path is not None:
            load_workflow_file(path)
        live = WorkflowStore(ctx.redis, ctx.keys).get()
        results.append(
            ("workflow", True, f"{len(live.events)} events listed, default {live.default}")
        )
    except WorkflowError as exc:
        results.append(("workflow", False, describe_error(str(path), exc) if path else str(exc)))
    except Exception as exc:
        results.append(("workflow", False, f"{type(exc).__name__}: {exc}"))

    results.append(_workers_check())

    for name, ok, detail in results:
        if args.json:
            emit_json({"check": name, "ok": ok, "detail": detail})
        else:
            print(f"{'ok  ' if ok else 'FAIL'}  {name:<12} {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def _redis_check(client: redis.Redis, probe_key: str) -> tuple[str, bool, str]:
    """Persistence settings, and whether Redis takes writes now (one tiny probe write):
    a refusal is named by its cause with the numbers behind it."""
    # No PING first: under MISCONF Redis refuses PING too, and the probe names the cause.
    refused = write_refusal(client, probe_key)
    info = client.info("persistence")
    policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "?")
    aof = bool(info.get("aof_enabled"))
    if refused is not None:
        memory = client.info("memory")
        return (
            "redis",
            False,
            f"refusing writes ({refused}: {REFUSALS.get(refused, 'see the Redis log')}); "
            f"used_memory={memory.get('used_memory_human')} "
            f"maxmemory={memory.get('maxmemory_human')} "
            f"rdb_last_bgsave_status={info.get('rdb_last_bgsave_status')} "
            f"aof_last_write_status={info.get('aof_last_write_status')}",
        )
    ok = aof and policy == "noeviction"
    return (
        "redis",
        ok,
        f"aof={'on' if aof else 'off'} maxmemory-policy={policy}"
        + ("" if ok else " (want appendonly yes and noeviction, see config/redis.conf)"),
    )


def _workers_check() -> tuple[str, bool, str]:
    try:
        from worker.app import app

        replies = app.control.ping(timeout=2.0) or []
    except Exception as exc:
        return ("workers", False, f"{type(exc).__name__}: {exc}")
    if not replies:
        return ("workers", False, "no live worker answered (is `celery -A worker.app worker` up?)")
    return (
        "workers",
        True,
        f"{len(replies)} live: " + ", ".join(sorted(next(iter(r)) for r in replies)),
    )
