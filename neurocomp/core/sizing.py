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


FLOOR = 8  # the default of ModelInfo.floor: no layer a budget scales is narrower than this


def scaled(value: int | tuple[int, ...], width: int, floor: int = 1) -> int | tuple[int, ...]:
    """An int option becomes ``width``; a tuple (conv channels, hidden layers) is scaled so its first
    entry is ``width`` and the others keep their ratio to it, none narrower than ``floor``: a budget
    never leaves a layer of 1-6 units behind a wider one (the MLP's second layer did)."""
    if isinstance(value, tuple):
        return (width, *(max(floor, round(v * width / value[0])) for v in value[1:]))
    return width


def fit_width(count_at: Callable[[int], Optional[int]], target: int, option: str, limit: int = 1 << 16,
              tolerance: float = TOLERANCE, floor: int = 1) -> tuple[int, int]:
    """The width (at least ``floor``) whose trainable count is closest to ``target``; UsageError if
    none is within ``tolerance`` (a fraction of ``target``), or if even the narrowest width allowed
    has more parameters (naming the smallest budget the model reaches). The tolerance only decides
    whether the closest width is accepted, never which width that is.

    ``count_at(width)`` returns the trainable parameter count, or None where no model of that width
    can be built (e.g. an NCP wiring too small for its outputs). Counts grow with the width.
    """
    low = next((w for w in range(floor, floor + 64) if count_at(w) is not None), None)
    if low is None:
        raise UsageError(f"no model.{option} from {floor} to {floor + 63} gives a model that can be built")
    if count_at(low) > target * (1 + tolerance):
        raise UsageError(f"--params {target:,} is under this model's floor: its narrowest allowed width "
                         f"(model.{option}={low}, no scaled layer under {floor}) has {count_at(low):,} trainable "
                         f"parameters; the nearest budget it reaches is --params {count_at(low):,}")
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
