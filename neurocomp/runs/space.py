"""Search spaces: ranges and choices of config keys, as a tune file or a model's registration
declares them, checked before any trial runs and asked of an Optuna trial.

In YAML a range is ``{low: 1.0e-4, high: 1.0e-2, log: true}`` (integers when both ends are; an
optional ``step``) and a choice is a list ``[none, balanced]`` (its values may be lists, e.g.
``[[false], [true]]`` for a tuple option).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Union

from ..core.errors import UsageError

RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Range:
    """Numbers from ``low`` to ``high`` (both included), on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False
    step: Optional[float] = None
    integer: bool = False


@dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple


Spec = Union[Range, Choice]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_spec(key: str, spec: Any) -> Spec:
    """``spec`` of the config key ``key`` as a Range or Choice; UsageError when it is neither."""
    if isinstance(spec, (Range, Choice)):
        return spec
    if isinstance(spec, (list, tuple)) and spec:
        return Choice(tuple(tuple(v) if isinstance(v, list) else v for v in spec))
    if isinstance(spec, dict) and {"low", "high"} <= set(spec) <= RANGE_KEYS:
        low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
        if not (_number(low) and _number(high) and isinstance(log, bool) and (step is None or _number(step))):
            raise UsageError(f"search space {key}: low, high and step must be numbers and log true or false, got {spec!r}")
        if not low < high or (log and low <= 0) or (step is not None and step <= 0):
            raise UsageError(f"search space {key}: needs low < high (low > 0 on a log scale, step > 0), got {spec!r}")
        integer = all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int))
        return Range(low, high, log, step, integer)
    raise UsageError(f"search space {key}: expected a non-empty list of choices or {{low, high[, log][, step]}}, "
                     f"got {spec!r}")


def candidates(spec: Spec) -> list:
    """Values that span ``spec`` (both ends, every choice): a config built with each must resolve."""
    if isinstance(spec, Choice):
        return list(spec.values)
    return [spec.low, spec.high]


def _label(value) -> Union[str, int, float, bool, None]:
    # Optuna's categorical values are plain scalars; a tuple option's choice goes in as its JSON text.
    return json.dumps(list(value)) if isinstance(value, tuple) else value


def suggest(trial, key: str, spec: Spec):
    """The value an Optuna ``trial`` picks for ``key`` within ``spec``."""
    if isinstance(spec, Choice):
        labels = [_label(v) for v in spec.values]
        return spec.values[labels.index(trial.suggest_categorical(key, labels))]
    if spec.integer:
        return trial.suggest_int(key, spec.low, spec.high, step=spec.step or 1, log=spec.log)
    return trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)


def from_trial_params(key: str, spec: Spec, value):
    """A value Optuna stored for ``key`` back as the config value (a tuple choice from its label)."""
    if isinstance(spec, Choice):
        return spec.values[[_label(v) for v in spec.values].index(value)]
    return value
