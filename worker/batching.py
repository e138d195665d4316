"""Pack encoded operations into ``/api/v2/batch`` request bodies under the size limit."""

from __future__ import annotations

from collections.abc import Sequence

from worker.cio_limits import BATCH_REQUEST_MAX_BYTES

_HEAD = b'{"batch":['
_TAIL = b"]}"


def pack(sizes: Sequence[int], max_bytes: int = BATCH_REQUEST_MAX_BYTES) -> list[range]:
    """Split operations, given their encoded sizes, into runs whose batch body fits.

    Order is kept, so an identify still precedes the events that follow it.
    """
    runs: list[range] = []
    start = 0
    used = len(_HEAD) + len(_TAIL)
    for i, size in enumerate(sizes):
        extra = size + (1 if i > start else 0)
        if i > start and used + extra > max_bytes:
            runs.append(range(start, i))
            start, used, extra = i, len(_HEAD) + len(_TAIL), size
        used += extra
    if start < len(sizes):
        runs.append(range(start, len(sizes)))
    return runs


def batch_body(encoded_ops: Sequence[bytes]) -> bytes:
    """The JSON body ``{"batch": [...]}`` from already-encoded operations, without re-encoding."""
    return _HEAD + b",".join(encoded_ops) + _TAIL
