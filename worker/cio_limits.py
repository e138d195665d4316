"""Customer.io Track API limits (see shared customerio-api.md); a 400 when exceeded."""

from __future__ import annotations

PERSON_ID_MAX_BYTES = 150
ATTRIBUTE_NAME_MAX_BYTES = 150
ATTRIBUTE_VALUE_MAX_BYTES = 1000
ATTRIBUTES_PER_IDENTIFY_MAX = 300
EVENT_NAME_MAX_BYTES = 100
EVENT_DATA_MAX_BYTES = 100_000
ENTITY_REQUEST_MAX_BYTES = 32 * 1024
BATCH_REQUEST_MAX_BYTES = 500 * 1024
BATCH_OPERATION_MAX_BYTES = 32 * 1024

# Attributes Customer.io reserves on a person (v1 body and v2 ``attributes``).
RESERVED_PERSON_ATTRIBUTES = frozenset(
    {"email", "id", "anonymous_id", "created_at", "_timestamp", "_update"}
)
