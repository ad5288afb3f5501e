"""``neurocomp migrate RESULTS``: older run records brought to the current schema and run id.

Each migration is numbered by the schema it produces and written once, here:

    3  the run id hashes the canonical config (neurocomp.runs.identity); the config gains every key it
       lacked at its behaviour-preserving value; every file's sha256 is recorded; a budget run
       records the widths it asked for (``params.asked``), found by giving back its old id, and
       its sizing rule: ``scaled`` (as before floors), or ``floors`` where that rule fits it the
       same widths, so a sweep finds it done only if it trained what the sweep asks for today.

A migration is atomic per run: the new ``run.json`` is written beside the old one and renamed over
it, then the folder is renamed to the new id. A kill between the two leaves a record whose id is
not its folder's name, which the next call finishes. Nothing is deleted, a record that cannot be
placed (its new id is taken, its model is not installed) is left as it is and named, and a second
call changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..core.errors import UsageError
from ..core.files import evidence, hold_back, write_json
from ..core.config import builder_options, resolve
from ..core.registry import MODELS
from ..training.assemble import build
from .identity import RUNTIME_KEYS, asked_config, completed_config, run_id
from .record import SCHEMA, RunRecord


def _schema_2_id(config: dict) -> str:
    """The id a schema-2 record was given: the sha1 of its whole config less the runtime keys (frozen
    here as it was, so a migration can tell which config made an old id)."""
    essential = {section: {k: v for k, v in values.items() if (section, k) not in RUNTIME_KEYS} if isinstance(values, dict)
                 else values for section, values in config.items() if (section,) not in RUNTIME_KEYS}
    digest = hashlib.sha1(json.dumps(essential, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{run_id(config).rsplit('-', 1)[0]}-{digest}"


def _asked_before_3(data: dict) -> dict:
    """A schema-2 budget run's width options as asked. Its config holds the widths the budget fitted,
    while its id was made from those asked; a sweep over budgets asks for the model's defaults, which
    are taken when they give back the record's id. UsageError (the record cannot be placed) else."""
    config = data["config"]
    option = MODELS.get(config["model"]["name"]).meta.width
    default = builder_options(MODELS.get(config["model"]["name"]).builder)[option].default
    asked = {option: json.loads(json.dumps(default))}
    if _schema_2_id(asked_config({**data, "params": {"asked": asked}})) != data["run_id"]:
        raise UsageError(f"its budget fitted model.{option}, and no width its id could have been made from is known")
    return asked


def _sizing(data: dict) -> str:
    """A budget run sized before floors existed (``sizing: scaled``) is one of ``floors`` too where
    the floor rule fits it the very widths it trained with: then it is what a sweep asks for today."""
    config = resolve({**asked_config(data), "sizing": "floors"})
    dataset = data["dataset"]
    try:
        build(config, tuple(dataset["sample_shape"]), len(dataset["class_names"]), dataset.get("multi_label", False))
    except UsageError:  # under the model's floor, or no width within the tolerance: not the same run
        return "scaled"
    fitted = {option: json.loads(json.dumps(config.model.options[option])) for option in data["params"]["asked"]}
    return "floors" if all(fitted[option] == data["config"]["model"][option] for option in fitted) else "scaled"


def _to_3(data: dict, folder: Path) -> dict:
    params = dict(data.get("params") or {})
    upgraded = {**data, "params": params, "config": completed_config(data["config"])}
    if params.get("target") is not None and "asked" not in params:
        params["asked"] = _asked_before_3(data)
        upgraded["config"]["sizing"] = _sizing(upgraded)
    return {**upgraded, "run_id": run_id(asked_config(upgraded)), "files": evidence(folder)}


# schema produced -> (what changes, how); applied in order from the record's schema + 1
MIGRATIONS: dict[int, tuple[str, Callable[[dict, Path], dict]]] = {
    3: ("run id of the canonical config; missing keys at their behaviour-preserving value; file hashes", _to_3),
}
assert sorted(MIGRATIONS) == list(range(3, SCHEMA + 1)), "every schema after 2 has its migration"


@dataclass
class Outcome:
    """What a migration call did (or, dry, would do), run by run."""

    migrated: list = field(default_factory=list)  # (old folder name, new id, schemas applied)
    current: list = field(default_factory=list)  # folder names already at the schema and id
    refused: list = field(default_factory=list)  # (folder name, why)
    skipped: list = field(default_factory=list)  # (run.json path, why): not a neurocomp record

    def __str__(self) -> str:
        return (f"migrate: {len(self.migrated)} migrated, {len(self.current)} already current, "
                f"{len(self.refused)} left as they are (cannot place), {len(self.skipped)} not run records")


def upgraded(data: dict, folder: Path) -> tuple[dict, list[int]]:
    """``data`` (a run.json's content) at the current schema, and the migrations applied; the
    record's own ``migrations`` list says what each did and what the id was before."""
    applied = []
    schema = data.get("schema", 1)
    for target in range(max(schema, 2) + 1, SCHEMA + 1):
        summary, step = MIGRATIONS[target]
        before = data["run_id"]
        data = step(data, folder)
        data["schema"] = target
        data["migrations"] = [*data.get("migrations", []), {"schema": target, "from_id": before, "change": summary}]
        applied.append(target)
    return data, applied


def migrate(root: str | Path, *, dry_run: bool = False) -> Outcome:
    """Bring every record under ``root`` (a results folder or its ``runs/``) to the current
    schema and id; with ``dry_run`` only say what would change. A run.json that is not a neurocomp
    record is skipped with a warning naming it."""
    root = Path(root)
    runs_dir = root / "runs" if (root / "runs").is_dir() else root
    if not runs_dir.is_dir():
        raise UsageError(f"{root} is not a results folder (no runs/ in it)")
    outcome = Outcome()
    for path in sorted(runs_dir.glob("*/run.json")):
        folder = path.parent
        if folder.name.startswith("."):
            continue  # a run's staging folder: its process publishes it
        try:
            data = json.loads(path.read_text())
            RunRecord.from_dict(data, folder)  # the same checks every reader makes
        except (OSError, ValueError, UnicodeDecodeError, UsageError) as error:
            warnings.warn(f"skipping {path}: {error}", stacklevel=2)
            outcome.skipped.append((str(path), str(error)))
            continue
        try:
            new, applied = upgraded(data, folder)
            target = run_id(asked_config(new))
        except UsageError as error:  # a model or encoder that is not installed here
            outcome.refused.append((folder.name, str(error)))
            continue
        if not applied and target == data["run_id"] == folder.name:
            outcome.current.append(folder.name)
            continue
        destination = runs_dir / target
        if destination != folder and destination.exists():
            outcome.refused.append((folder.name, f"its id {target} is taken by another run folder"))
            continue
        outcome.migrated.append((folder.name, target, applied))
        if dry_run:
            continue
        if applied or new["run_id"] != target:
            hold_back(folder, new["files"])
            write_json(path, {**new, "run_id": target})
        if destination != folder:
            os.rename(folder, destination)  # atomic; the record already names its new id
    return outcome
