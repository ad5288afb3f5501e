"""Fair size: pick a model's width so its trainable parameter count lands near a budget (``--params 20k``)."""

from __future__ import annotations

import re
from typing import Callable, Optional

from .errors import UsageError

TOLERANCE = 0.05  # the default of ``params_tolerance``: how far from the budget a model may land


def parse_count(value: int | str) -> int:
    """``20000``, ``"20k"``, ``"1.5M"`` -> an int; UsageError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
        if not match:
            raise UsageError(f"--params {value!r}: expected a count like 20000, 20k or 1.5M")
        count = round(float(match[1]) * {"": 1, "k": 10**3, "m": 10**6}[match[2].lower()])
    if count < 1:
        raise UsageError(f"--params must be positive, got {value!r}")
    return count


def scaled(value: int | tuple[int, ...], width: int) -> int | tuple[int, ...]:
    """An int option becomes ``width``; a tuple (e.g. conv channels) is scaled so its first entry is ``width``."""
    if isinstance(value, tuple):
        return tuple(max(1, round(v * width / value[0])) for v in value)
    return width


def fit_width(count_at: Callable[[int], Optional[int]], target: int, option: str, limit: int = 1 << 16,
              tolerance: float = TOLERANCE) -> tuple[int, int]:
    """The width whose trainable count is closest to ``target``; UsageError if none is within
    ``tolerance`` (a fraction of ``target``). The tolerance only decides whether the closest width is
    accepted, never which width that is.

    ``count_at(width)`` returns the trainable parameter count, or None where no model of that width
    can be built (e.g. an NCP wiring too small for its outputs). Counts grow with the width.
    """
    low = next((w for w in range(1, 65) if count_at(w) is not None), None)
    if low is None:
        raise UsageError(f"no model.{option} from 1 to 64 gives a model that can be built")
    high = low
    while count_at(high) < target and high < limit:  # double until the budget is passed
        low, high = high, min(high * 2, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if count_at(middle) < target:
            low = middle
        else:
            high = middle
    width = min((low, high), key=lambda w: abs(count_at(w) - target))
    count = count_at(width)
    if abs(count - target) > tolerance * target:
        nearest = ", ".join(dict.fromkeys(f"{option}={w} gives {count_at(w):,}" for w in (low, high)))
        raise UsageError(f"no model.{option} reaches {target:,} trainable parameters within {tolerance:.0%}: "
                         f"{nearest} (a wider params_tolerance accepts the closest)")
    return width, count
