"""What a run id names: the canonical form of a resolved config, and the id made from it.

A run id is a promise that the same id means the same training. It hashes the *canonical* config:
every key that changes what is trained or recorded, except those at their **behaviour-preserving
value** (the value that reproduces what the suite did before the key existed). Adding an option
with such a default therefore never moves an id, and a record made before the key existed (which
lacks it) keeps its id. Each key declares that value where it is defined:

- a config dataclass field: its default, or ``field(metadata={NEUTRAL: value})`` where the default
  changed after the key was added (``train.class_weight`` was added as ``none`` and became
  ``balanced``);
- a builder option: its default, or the registration's ``neutral={"option": value}``, or for an
  option group's field (``@with_options``) its ``field(metadata={"neutral": ...})``.

``ID_SCHEMA`` is hashed with the config: changing what a value means is a numbered migration
(``neurocomp.runs.migrate``), never a silent rename.

    >>> config = resolve({"dataset": {"name": "breast"}, "model": "mlp"}).to_dict()
    >>> run_id(config)  # dataset-model-encoder-s<seed>-<8 hex digits of the canonical form>
    'breast-mlp-static-s0-...'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..core.config import DatasetConfig, EvalConfig, RunConfig, TrainConfig, builder_options
from ..core.errors import UsageError
from ..core.registry import ENCODERS, MODELS, Registry

ID_SCHEMA = 1  # hashed into every id; bumped only by a migration in neurocomp.runs.migrate
NEUTRAL = "neutral"  # dataclass field metadata key: the behaviour-preserving value, where not the default
# Config keys that change where or how fast a run happens, or whether it is allowed to, not what it
# computes: not in the run id, and not what tells two table rows apart. (params_tolerance only accepts
# or refuses the closest width; the width that ran is in the model's options.)
RUNTIME_KEYS = {("train", "device"), ("train", "threads"), ("model", "backend"), ("dataset", "data_dir"),
                ("dataset", "download"), ("dataset", "verify"), ("out",), ("params_tolerance",)}
IDENTITY_KEYS = (("dataset", "name"), ("model", "name"), ("encoder", "name"), ("train", "seed"))
_SECTIONS = {"dataset": DatasetConfig, "train": TrainConfig, "eval": EvalConfig}
_BUDGET_ONLY = {"sizing"}  # top-level keys that change nothing without a --params budget


def _plain(value: Any) -> Any:
    """JSON's view of a value: tuples and lists alike, so a record read back compares equal."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _dataclass_neutral(cls: type) -> dict[str, Any]:
    return {f.name: f.metadata.get(NEUTRAL, f.default) for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


# The top-level keys besides the sections (params, sizing), at their behaviour-preserving values.
_TOP_LEVEL = {key: value for key, value in _dataclass_neutral(RunConfig).items() if (key,) not in RUNTIME_KEYS}


def _component_neutral(registry: Registry, name: str) -> dict[str, Any]:
    """A registered builder's options at their behaviour-preserving values; UsageError when the
    name is not registered (a record of a plug-in that is not installed cannot be placed)."""
    entry = registry.get(name)
    values = {key: param.default for key, param in builder_options(entry.builder).items()}
    for group in getattr(entry.builder, "option_groups", ()):  # a shared option's own declaration
        values.update(_dataclass_neutral(group))
    return {**values, **entry.meta.neutral}


def neutral_values(config: dict) -> dict[str, dict[str, Any]]:
    """Section -> key -> the behaviour-preserving value of every key ``config`` (nested, as in
    YAML) can hold, for its model and encoder; the top level is the section ``""``."""
    return {
        **{section: _dataclass_neutral(cls) for section, cls in _SECTIONS.items()},
        "model": _component_neutral(MODELS, config["model"]["name"]),
        "encoder": _component_neutral(ENCODERS, config["encoder"]["name"]),
        "": dict(_TOP_LEVEL),
    }


def canonical(config: dict) -> dict:
    """The part of a resolved config (nested dict) that a run id hashes: runtime keys dropped,
    keys at their behaviour-preserving value dropped (a missing key counts as at it), names and
    seed always kept, and the id schema. Keys no code declares (a record's option that was
    removed since) are kept: what they held cannot be assumed away."""
    neutral = neutral_values(config)
    always = set(IDENTITY_KEYS)
    form: dict[str, Any] = {"id_schema": ID_SCHEMA}
    for section, values in config.items():
        if (section,) in RUNTIME_KEYS:
            continue
        if not isinstance(values, dict):
            if section in _BUDGET_ONLY and config.get("params") is None:
                continue
            if section not in _TOP_LEVEL or _plain(values) != _plain(_TOP_LEVEL[section]):
                form[section] = _plain(values)
            continue
        declared = neutral.get(section, {})
        kept = {key: _plain(value) for key, value in values.items()
                if (section, key) not in RUNTIME_KEYS
                and ((section, key) in always or key not in declared or _plain(value) != _plain(declared[key]))}
        if kept:
            form[section] = kept
    return form


def run_id(config: dict) -> str:
    """``dataset-model-encoder-s<seed>-<hash>`` of a resolved config (nested dict): readable, and
    the same for every config that trains the same thing (see :func:`canonical`)."""
    try:
        names = [config[section][key] for section, key in IDENTITY_KEYS]
    except (KeyError, TypeError):
        raise UsageError("a run config needs dataset.name, model.name, encoder.name and train.seed") from None
    digest = hashlib.sha1(json.dumps(canonical(config), sort_keys=True).encode()).hexdigest()[:8]
    dataset, model, encoder, seed = names
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).stem if dataset.endswith(".npz") else dataset)
    return f"{dataset}-{model}-{encoder}-s{seed}-{digest}"


def widths(config: RunConfig) -> dict:
    """The width options a ``--params`` budget fits, as the config asks for them: ``{option: value}``
    (JSON's view), empty without a budget. A budget run's record holds the fitted widths in its
    config and these in ``params.asked``, since its id names the run as asked."""
    declared = MODELS.get(config.model.name).meta.width
    if config.params is None or declared is None:
        return {}
    return {declared: _plain(config.model.options[declared])}


def asked_config(record: dict) -> dict:
    """The config (nested dict) a record's id was made from: its config, with the width options a
    budget fitted put back as they were asked (``params.asked``)."""
    config = record["config"]
    asked = (record.get("params") or {}).get("asked")
    if not asked:
        return config
    return {**config, "model": {**config["model"], **asked}}


def completed_config(config: dict) -> dict:
    """``config`` with every key it lacks filled in at its behaviour-preserving value (what a run
    made before that key existed did): the form a migrated record holds. Its id is unchanged."""
    neutral = neutral_values(config)
    filled = {section: dict(values) if isinstance(values, dict) else values for section, values in config.items()}
    for section, values in neutral.items():
        if section == "":
            for key, value in values.items():
                filled.setdefault(key, value)
            continue
        target = filled.setdefault(section, {})
        for key, value in values.items():
            target.setdefault(key, _plain(value))
    return filled
