"""Pure checks of Track API bodies against Customer.io's published limits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from worker.cio_limits import (
    ATTRIBUTE_NAME_MAX_BYTES,
    ATTRIBUTE_VALUE_MAX_BYTES,
    ATTRIBUTES_PER_IDENTIFY_MAX,
    BATCH_OPERATION_MAX_BYTES,
    EVENT_DATA_MAX_BYTES,
    EVENT_NAME_MAX_BYTES,
    PERSON_ID_MAX_BYTES,
)

EVENT_TYPES = frozenset({"event", "page", "screen"})
EVENT_ACTIONS = EVENT_TYPES
PERSON_ACTIONS = frozenset(
    {
        "identify",
        "event",
        "page",
        "screen",
        "delete",
        "suppress",
        "unsuppress",
        "merge",
        "add_device",
        "delete_device",
    }
)
OBJECT_ACTIONS = frozenset(
    {"identify", "identify_anonymous", "add_relationships", "delete_relationships", "delete"}
)
DEVICE_PLATFORMS = frozenset({"ios", "android"})
_OBJECT_TYPE = re.compile(r"[1-9][0-9]*")
IDENTIFIER_KINDS = ("id", "email", "cio_id")
# Larger values are milliseconds (year 5138 in seconds): they silently break segments.
MAX_TIMESTAMP_S = 10**11
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# A ULID: 26 Crockford base32 characters, the first at most 7 so it fits 128 bits.
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
# Identifier keys a person body may carry that are not attributes.
IDENTITY_KEYS = frozenset({"id", "email", "cio_id", "_update", "_timestamp"})


class Problem(NamedTuple):
    """One reason a body or operation is refused, in Customer.io's 207 item terms."""

    field: str
    reason: str
    message: str


def is_email(value: str) -> bool:
    """Whether a string is shaped like an email address."""
    return _EMAIL_SHAPE.fullmatch(value) is not None


def identifier_kind(value: str) -> tuple[str, str]:
    """Kind and value of a v1 path identifier, inferred from its shape as Customer.io does."""
    if value.startswith("cio_"):
        return "cio_id", value[4:]
    if is_email(value):
        return "email", value
    return "id", value


def json_size(value: Any) -> int:
    """Bytes of a value as Customer.io counts them: UTF-8 for strings, compact JSON otherwise."""
    if isinstance(value, str):
        return len(value.encode())
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _too_big(value: Any, limit: int) -> bool:
    """Whether ``json_size(value) > limit``, skipping the encoding when length alone decides."""
    if isinstance(value, str):
        # A character is at most 4 UTF-8 bytes.
        return len(value) * 4 > limit and len(value.encode()) > limit
    if value is None or isinstance(value, bool | int | float):
        return len(str(value)) > limit
    return json_size(value) > limit


def check_timestamp(field: str, value: Any) -> Problem | None:
    """Integer Unix seconds only: floats, strings and millisecond values are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        return Problem(field, "invalid_timestamp", f"{field} must be an integer Unix timestamp")
    if value < 0 or value > MAX_TIMESTAMP_S:
        return Problem(
            field, "invalid_timestamp", f"{field} must be Unix seconds (got {value}, milliseconds?)"
        )
    return None


def check_ulid(field: str, value: Any) -> Problem | None:
    """A de-duplication id must be a ULID: 26 Crockford base32 characters."""
    if isinstance(value, str) and _ULID.fullmatch(value):
        return None
    return Problem(
        field, "invalid_ulid", f"{field} must be a ULID (26 Crockford base32 characters)"
    )


def check_event_name(field: str, value: Any) -> Problem | None:
    """An event name is a non-blank string of at most 100 bytes."""
    if not isinstance(value, str):
        return Problem(field, "required", f"{field} is required and must be a string")
    if not value.strip():
        return Problem(field, "blank", f"{field} must not be blank")
    if _too_big(value.strip(), EVENT_NAME_MAX_BYTES):
        return Problem(field, "too_long", f"{field} is longer than {EVENT_NAME_MAX_BYTES} bytes")
    return None


def check_person_id(field: str, value: Any, *, allow_int: bool = False) -> Problem | None:
    """A person id is a non-empty string of at most 150 bytes (an integer in v1 bodies)."""
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        return Problem(field, "invalid", f"{field} must be a non-empty string")
    if _too_big(value, PERSON_ID_MAX_BYTES):
        return Problem(field, "too_long", f"{field} is longer than {PERSON_ID_MAX_BYTES} bytes")
    return None


def check_email(field: str, value: Any) -> Problem | None:
    """An email identifier must look like an email address."""
    if not isinstance(value, str) or not is_email(value):
        return Problem(field, "invalid", f"{field} must be an email address")
    return None


def check_attributes(prefix: str, attributes: Mapping[str, Any]) -> list[Problem]:
    """Attribute count, name and value sizes, and the reserved attributes' types."""
    problems: list[Problem] = []
    count = sum(1 for name in attributes if name not in IDENTITY_KEYS)
    if count > ATTRIBUTES_PER_IDENTIFY_MAX:
        problems.append(
            Problem(
                prefix.rstrip(".") or "attributes",
                "too_many",
                f"{count} attributes; at most {ATTRIBUTES_PER_IDENTIFY_MAX} per identify",
            )
        )
    for name, value in attributes.items():
        field = prefix + name
        if _too_big(name, ATTRIBUTE_NAME_MAX_BYTES):
            problems.append(
                Problem(
                    field[:200],
                    "too_long",
                    f"attribute name longer than {ATTRIBUTE_NAME_MAX_BYTES} bytes",
                )
            )
        elif _too_big(value, ATTRIBUTE_VALUE_MAX_BYTES):
            problems.append(
                Problem(
                    field, "too_long", f"{field} is longer than {ATTRIBUTE_VALUE_MAX_BYTES} bytes"
                )
            )
        elif name in _RESERVED_CHECKS and value is not None:
            problem = _RESERVED_CHECKS[name](field, value)
            if problem:
                problems.append(problem)
    return problems


def _check_anonymous_id(field: str, value: Any) -> Problem | None:
    if not isinstance(value, str) or not value:
        return Problem(field, "invalid", f"{field} must be a non-empty string")
    return None


def _check_bool(field: str, value: Any) -> Problem | None:
    if not isinstance(value, bool):
        return Problem(field, "invalid", f"{field} must be a boolean")
    return None


_RESERVED_CHECKS = {
    "id": lambda field, value: check_person_id(field, value, allow_int=True),
    "email": check_email,
    "anonymous_id": _check_anonymous_id,
    "created_at": check_timestamp,
    "_timestamp": check_timestamp,
    "_update": _check_bool,
}


def check_event_data(field: str, data: Any, *, may_be_large: bool = True) -> Problem | None:
    """Event data is an object of at most 100,000 bytes."""
    if not isinstance(data, dict):
        return Problem(field, "invalid", f"{field} must be an object")
    if may_be_large and json_size(data) > EVENT_DATA_MAX_BYTES:
        return Problem(field, "too_large", f"{field} is larger than {EVENT_DATA_MAX_BYTES} bytes")
    return None


def _event_fields(
    body: Mapping[str, Any], data_key: str, *, data_may_be_large: bool
) -> list[Problem]:
    """Checks shared by every event shape: name, id, timestamp and data."""
    problems: list[Problem] = []
    for problem in (
        check_event_name("name", body.get("name")),
        check_ulid("id", body["id"]) if "id" in body else None,
        check_timestamp("timestamp", body["timestamp"]) if "timestamp" in body else None,
        check_event_data(data_key, body[data_key], may_be_large=data_may_be_large)
        if data_key in body
        else None,
    ):
        if problem:
            problems.append(problem)
    return problems


def validate_v1_identify(identifier: str, body: Mapping[str, Any]) -> list[Problem]:
    """Problems with ``PUT /api/v1/customers/{identifier}``."""
    kind, value = identifier_kind(identifier)
    problems: list[Problem] = []
    if kind == "id":
        problem = check_person_id("identifier", value)
        if problem:
            problems.append(problem)
    elif not value:
        problems.append(Problem("identifier", "invalid", "identifier must not be empty"))
    return problems + check_attributes("", body)


def validate_v1_event(
    identifier: str | None, body: Mapping[str, Any], *, body_bytes: int
) -> list[Problem]:
    """Problems with a v1 event, for a person (``identifier``) or anonymous (None)."""
    problems: list[Problem] = []
    if identifier is not None:
        kind, value = identifier_kind(identifier)
        problem = check_person_id("identifier", value) if kind == "id" else None
        if problem:
            problems.append(problem)
    elif "anonymous_id" in body:
        problem = _check_anonymous_id("anonymous_id", body["anonymous_id"])
        if problem:
            problems.append(problem)
    event_type = body.get("type", "event")
    if event_type not in EVENT_TYPES:
        problems.append(Problem("type", "invalid", "type must be one of event, page, screen"))
    return problems + _event_fields(
        body, "data", data_may_be_large=body_bytes > EVENT_DATA_MAX_BYTES
    )


def check_identifiers(field: str, identifiers: Any) -> list[Problem]:
    """A v2 person reference: an object with exactly one of id, email or cio_id."""
    if not isinstance(identifiers, dict):
        return [Problem(field, "required", f"{field} must be an object")]
    if "phone" in identifiers:
        return [Problem(field + ".phone", "unsupported", "phone identifiers are not enabled")]
    kinds = [k for k in IDENTIFIER_KINDS if k in identifiers]
    if len(kinds) != 1 or len(identifiers) != 1:
        return [Problem(field, "invalid", f"{field} must hold exactly one of id, email, cio_id")]
    kind = kinds[0]
    value = identifiers[kind]
    if kind == "id":
        problem = check_person_id(f"{field}.id", value)
    elif kind == "email":
        problem = check_email(f"{field}.email", value)
    elif not isinstance(value, str) or not value:
        problem = Problem(
            f"{field}.cio_id", "invalid", f"{field}.cio_id must be a non-empty string"
        )
    else:
        problem = None
    return [problem] if problem else []


def validate_operation(op: Any, *, size_bytes: int | None = None) -> list[Problem]:
    """Problems with one v2 operation (an entity body, or a batch item of ``size_bytes``)."""
    if not isinstance(op, dict):
        return [Problem("", "invalid", "operation must be an object")]
    if size_bytes is not None and size_bytes > BATCH_OPERATION_MAX_BYTES:
        return [
            Problem("", "too_large", f"operation is larger than {BATCH_OPERATION_MAX_BYTES} bytes")
        ]
    if op.get("type") == "object":
        return validate_object_operation(op)
    if op.get("type") != "person":
        return [Problem("type", "invalid", "type must be person or object")]
    action = op.get("action")
    if action not in PERSON_ACTIONS:
        return [Problem("action", "invalid", f"unknown person action {action!r}")]
    if action == "merge":
        return check_identifiers("primary", op.get("primary")) + check_identifiers(
            "secondary", op.get("secondary")
        )
    problems = check_identifiers("identifiers", op.get("identifiers"))
    if action == "identify":
        if "timestamp" in op:
            problem = check_timestamp("timestamp", op["timestamp"])
            if problem:
                problems.append(problem)
        attributes = op.get("attributes", {})
        if not isinstance(attributes, dict):
            problems.append(Problem("attributes", "invalid", "attributes must be an object"))
        else:
            problems += check_attributes("attributes.", attributes)
    elif action in EVENT_ACTIONS:
        # An operation is at most 32 KB, so its data is always under the 100 KB limit.
        problems += _event_fields(op, "attributes", data_may_be_large=False)
    elif action in ("add_device", "delete_device"):
        problems += check_device("device", op.get("device"), full=action == "add_device")
    return problems


def check_device(field: str, device: Any, *, full: bool) -> list[Problem]:
    """A device: a token; to add one also an ios/android platform, a Unix-seconds
    ``last_used`` and string attributes."""
    if not isinstance(device, dict):
        return [Problem(field, "required", f"{field} must be an object")]
    token = device.get("token")
    problems: list[Problem] = []
    if not isinstance(token, str) or not token:
        problems.append(Problem(f"{field}.token", "required", f"{field}.token is required"))
    if not full:
        return problems
    if device.get("platform") not in DEVICE_PLATFORMS:
        problems.append(
            Problem(f"{field}.platform", "invalid", f"{field}.platform must be ios or android")
        )
    if "last_used" in device:
        problem = check_timestamp(f"{field}.last_used", device["last_used"])
        if problem:
            problems.append(problem)
    attributes = device.get("attributes", {})
    if not isinstance(attributes, dict):
        problems.append(Problem(f"{field}.attributes", "invalid", "attributes must be an object"))
    else:
        problems += [
            Problem(f"{field}.attributes.{name}", "invalid", "device attributes must be strings")
            for name, value in attributes.items()
            if not isinstance(value, str)
        ]
    return problems


def check_object_identifiers(identifiers: Any) -> list[Problem]:
    """An object reference: ``object_type_id`` (a string integer from 1) and ``object_id``,
    or ``cio_object_id``."""
    field = "identifiers"
    if not isinstance(identifiers, dict):
        return [Problem(field, "required", f"{field} must be an object")]
    if set(identifiers) == {"cio_object_id"}:
        if isinstance(identifiers["cio_object_id"], str) and identifiers["cio_object_id"]:
            return []
        return [Problem(f"{field}.cio_object_id", "invalid", "cio_object_id must be a string")]
    if set(identifiers) != {"object_type_id", "object_id"}:
        return [
            Problem(
                field, "invalid", f"{field} must be object_type_id and object_id, or cio_object_id"
            )
        ]
    problems: list[Problem] = []
    type_id = identifiers["object_type_id"]
    if not isinstance(type_id, str) or not _OBJECT_TYPE.fullmatch(type_id):
        problems.append(
            Problem(
                f"{field}.object_type_id",
                "invalid",
                "object_type_id must be a string integer from 1 (an existing object type)",
            )
        )
    object_id = identifiers["object_id"]
    if not isinstance(object_id, str) or not object_id:
        problems.append(
            Problem(f"{field}.object_id", "invalid", "object_id must be a non-empty string")
        )
    elif _too_big(object_id, PERSON_ID_MAX_BYTES):
        problems.append(
            Problem(
                f"{field}.object_id", "too_long", f"object_id is over {PERSON_ID_MAX_BYTES} bytes"
            )
        )
    return problems


def _check_relationships(
    op: Mapping[str, Any], *, anonymous: bool, required: bool
) -> list[Problem]:
    """``cio_relationships``: people (or, for identify_anonymous, anonymous ids) with
    optional relationship attributes."""
    field = "cio_relationships"
    items = op.get(field)
    if items is None:
        return [Problem(field, "required", f"{field} is required")] if required else []
    if not isinstance(items, list):
        return [Problem(field, "invalid", f"{field} must be a list")]
    problems: list[Problem] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "invalid", f"{where} must be an object"))
            continue
        identifiers = item.get("identifiers")
        if anonymous:
            if not isinstance(identifiers, dict) or set(identifiers) != {"anonymous_id"}:
                problems.append(
                    Problem(
                        f"{where}.identifiers", "invalid", "identifiers must be an anonymous_id"
                    )
                )
            else:
                problem = _check_anonymous_id(
                    f"{where}.identifiers.anonymous_id", identifiers["anonymous_id"]
                )
                problems += [problem] if problem else []
        else:
            problems += check_identifiers(f"{where}.identifiers", identifiers)
        related = item.get("relationship_attributes", {})
        if not isinstance(related, dict):
            problems.append(
                Problem(f"{where}.relationship_attributes", "invalid", "must be an object")
            )
        else:
            problems += check_attributes(f"{where}.relationship_attributes.", related)
    return problems


def validate_object_operation(op: Mapping[str, Any]) -> list[Problem]:
    """Problems with one v2 object operation."""
    action = op.get("action")
    if action not in OBJECT_ACTIONS:
        return [Problem("action", "invalid", f"unknown object action {action!r}")]
    problems = check_object_identifiers(op.get("identifiers"))
    if action in ("identify", "identify_anonymous"):
        attributes = op.get("attributes", {})
        if not isinstance(attributes, dict):
            problems.append(Problem("attributes", "invalid", "attributes must be an object"))
        else:
            problems += check_attributes("attributes.", attributes)
    if action != "delete":
        problems += _check_relationships(
            op,
            anonymous=action == "identify_anonymous",
            required=action in ("add_relationships", "delete_relationships"),
        )
    return problems
