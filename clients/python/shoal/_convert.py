"""Turning caller input (lists, tuples, numpy arrays, dataclasses) into the API's JSON shapes."""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence

try:  # numpy is optional: arrays are accepted when it is installed, never required.
    import numpy as _np
except ImportError:  # pragma: no cover - depends on the machine
    _np = None

HAS_NUMPY = _np is not None


def is_matrix(x: Any) -> bool:
    """True for a 2-D input (a numpy array with ndim 2, or a sequence whose first item is a sequence)."""
    ndim = getattr(x, "ndim", None)
    if ndim is not None:
        return int(ndim) == 2
    if isinstance(x, (list, tuple)) and x:
        first = x[0]
        return hasattr(first, "__len__") and not isinstance(first, (str, bytes, dict))
    return False


def to_floats(x: Any, where: str) -> List[float]:
    """A 1-D vector as a list of finite Python floats; `where` names it in the error."""
    if hasattr(x, "tolist"):
        # numpy: float32 rows become Python floats of the same float32 value, which the server keeps exactly.
        x = x.tolist()
    if isinstance(x, (str, bytes, dict)) or not hasattr(x, "__iter__"):
        raise TypeError(f"{where} must be a sequence of numbers, got {type(x).__name__}")
    out = []
    for j, v in enumerate(x):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise TypeError(f"{where}[{j}] must be a number, got {type(v).__name__}") from None
        f = float(v)
        # JSON has no NaN or Infinity; catching them here names the element instead of a bare INVALID_JSON.
        if not math.isfinite(f):
            raise ValueError(f"{where}[{j}] must be a finite number, got {f}")
        out.append(f)
    return out


def to_rows(x: Any, where: str) -> List[List[float]]:
    if hasattr(x, "tolist") and getattr(x, "ndim", 2) == 2:
        x = x.tolist()
    return [to_floats(row, f"{where}[{i}]") for i, row in enumerate(x)]


def to_id(x: Any) -> Any:
    """Ids are strings or non-negative integers; numpy integers become Python ints (json cannot encode them)."""
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        raise TypeError(f"an id must be a string or an integer, got {x!r}")
    if isinstance(x, int):
        return x
    if hasattr(x, "item"):
        return to_id(x.item())
    raise TypeError(f"an id must be a string or an integer, got {type(x).__name__}")


def to_ids(x: Any) -> List[Any]:
    if isinstance(x, (str, int)) and not isinstance(x, bool):
        return [to_id(x)]
    if hasattr(x, "tolist"):
        x = x.tolist()
    return [to_id(i) for i in x]


def to_vector_json(item: Any, i: int) -> dict:
    """One upsert item: a dict {id, values, metadata?}, a `Vector`, or a tuple (id, values[, metadata])."""
    where = f"vectors[{i}]"
    if isinstance(item, dict):
        if "id" not in item:
            raise ValueError(f"{where} has no id")
        values = item.get("values", item.get("vector"))
        if values is None:
            raise ValueError(f"{where} has no values")
        out = {"id": to_id(item["id"]), "values": to_floats(values, f"{where}.values")}
        if item.get("metadata") is not None:
            out["metadata"] = item["metadata"]
        return out
    if hasattr(item, "id") and hasattr(item, "values"):
        out = {"id": to_id(item.id), "values": to_floats(item.values, f"{where}.values")}
        if getattr(item, "metadata", None) is not None:
            out["metadata"] = item.metadata
        return out
    if isinstance(item, (tuple, list)) and 2 <= len(item) <= 3:
        out = {"id": to_id(item[0]), "values": to_floats(item[1], f"{where}.values")}
        if len(item) == 3 and item[2] is not None:
            out["metadata"] = item[2]
        return out
    raise TypeError(f"{where} must be a dict, a Vector or an (id, values[, metadata]) tuple")


def zip_columns(ids: Any, values: Any, metadata: Optional[Sequence[Any]]) -> List[tuple]:
    """Columns (ids, a 2-D array or list of rows, metadata list or None) as (id, row, metadata) tuples."""
    id_list = to_ids(ids)
    n_rows = len(values)
    if len(id_list) != n_rows:
        raise ValueError(f"{len(id_list)} ids for {n_rows} rows of values")
    if metadata is not None and len(metadata) != n_rows:
        raise ValueError(f"{len(metadata)} metadata entries for {n_rows} rows of values")
    if getattr(values, "ndim", 2) != 2:
        raise ValueError(f"values must be 2-D (rows × dimension), got ndim {values.ndim}")
    return [(id_list[i], values[i], metadata[i] if metadata is not None else None) for i in range(n_rows)]
