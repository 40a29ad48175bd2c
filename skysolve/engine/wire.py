"""One serialisation of what a solve takes and gives, for every transport.

A solve that runs elsewhere (a Celery worker, an ssh solve host) gets its
input and sends back its result in these shapes, whatever carries them:

* parameters: :meth:`SolveParameters.to_dict` / ``from_mapping``;
* a source list: :func:`encode_sources` -- a small header and its columns as
  little-endian float64 bytes (the ssh stream sends the bytes raw, a Celery
  task as base64);
* a result: :meth:`SolveResult.to_json` / :meth:`SolveResult.from_json`, its
  files beside it;
* an error: :func:`skysolve.errors.error_to_dict` / ``error_from_dict``.
"""

from __future__ import annotations

from typing import Any, TypeGuard

import numpy as np

from skysolve.engine.results import SourceList
from skysolve.errors import BadInputError

#: Columns a source list may carry, in wire order.
SOURCE_COLUMNS: tuple[str, ...] = ("x", "y", "flux", "background")


def encode_sources(sources: SourceList) -> tuple[dict[str, Any], bytes]:
    """The header and bytes of a source list."""
    columns = ["x", "y", "flux"]
    arrays = [sources.x, sources.y, sources.flux]
    if sources.background is not None:
        columns.append("background")
        arrays.append(sources.background)
    body = b"".join(np.asarray(a, dtype="<f8").tobytes() for a in arrays)
    meta = {
        "kind": "sources",
        "size": len(body),
        "count": len(sources),
        "width": int(sources.width),
        "height": int(sources.height),
        "columns": columns,
    }
    return meta, body


def decode_sources(meta: dict[str, Any], body: bytes) -> SourceList:
    """The inverse of :func:`encode_sources`; raises BadInputError for anything odd."""
    columns = meta.get("columns")
    count, width, height = meta.get("count"), meta.get("width"), meta.get("height")
    if (
        not isinstance(columns, list)
        or columns[:3] != ["x", "y", "flux"]
        or columns not in (["x", "y", "flux"], list(SOURCE_COLUMNS))
    ):
        raise BadInputError(f"source list columns must be x, y, flux [, background], not {columns}")
    for name, value in (("count", count), ("width", width), ("height", height)):
        if not _is_int(value) or value < 0:
            raise BadInputError(f"source list {name} must be a whole number, not {value!r}")
    assert _is_int(count) and _is_int(width) and _is_int(height)
    if len(body) != count * len(columns) * 8:
        raise BadInputError(
            f"{len(body)} bytes do not hold {count} sources of {len(columns)} columns"
        )
    table = np.frombuffer(body, dtype="<f8").reshape(len(columns), count).astype(float)
    if not np.all(np.isfinite(table)):
        raise BadInputError("the source list holds NaN or infinite values")
    return SourceList(
        x=table[0],
        y=table[1],
        flux=table[2],
        width=width,
        height=height,
        background=table[3] if len(columns) == 4 else None,
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
