"""Recount the inference cost of recorded runs from their saved weights, so records made before an
estimate existed (energy with memory accesses) gain it without training again.

The recount runs the same counting pass on the same encoded test batch as the run did; it is only
written when it reproduces the counts the record already holds, so a record never mixes two ways
of counting.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Optional

from ..training.cost import inference_cost
from ..data.datasets import load_dataset
from ..core.errors import UsageError
from .record import code_version
from .pipeline import cost_probe, load_trained

CHECKED = ("dense_macs", "macs", "acs", "energy_pj")  # what a record before energy with memory holds


def recount(directory: str | Path) -> Optional[dict]:
    """Add the cost fields a completed run's record lacks (recounted from ``model.pt``) and return its
    new cost; None when it has them all. UsageError when the data is not the run's or the recount
    disagrees with the record."""
    record, config, encoder, model = load_trained(directory)
    if "energy_with_memory_pj" in record.cost:
        return None
    dataset = load_dataset(config.dataset)
    if dataset.md5 != record.dataset["md5"]:
        raise UsageError(f"{record.run_id}: {dataset.path} is not the file the run read (MD5 {dataset.md5}, "
                         f"recorded {record.dataset['md5']})")
    cost = inference_cost(model, cost_probe(config, encoder, dataset.splits["test"].images), input_spikes=encoder.spikes)
    for key in CHECKED:
        if key in record.cost and not math.isclose(cost[key], record.cost[key], rel_tol=1e-6, abs_tol=1e-6):
            raise UsageError(f"{record.run_id}: the recount gives {key} = {cost[key]:,.1f}, the record "
                             f"{record.cost[key]:,.1f}; not written")
    commit = code_version()["commit"] or "installed package"
    record.cost = {**cost, "recounted": f"{commit[:7]} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"}
    record.write()
    return record.cost
