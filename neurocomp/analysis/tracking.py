"""``neurocomp export RESULTS --mlflow``: every run record as one MLflow run, in the tracker
researchers already use (``pip install 'neurocomp[mlflow]'``).

Each record becomes an MLflow run named by its run id, in the experiment ``neurocomp``:
- params: the resolved config as dotted keys (``train.lr``, ``model.units``);
- metrics: the history per epoch (step = epoch) and the final metrics of each split (``test.auc``);
- tags: ``neurocomp.run_id``, the code commit, the kernel paths, the dataset's MD5 and the status;
- artifacts: ``run.json``, ``history.csv`` and ``predictions.npz``.

Idempotent: a neurocomp run id maps to one MLflow run, found by its tag; an MLflow run left
unfinished by a killed export is deleted and written again, so a second call completes the work.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..core.errors import UsageError
from ..runs.record import RunRecord, load_runs

EXPERIMENT = "neurocomp"
_TAG = "neurocomp.run_id"
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}  # MLflow's log_batch limits


def _client(tracking_uri: str | None):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError("MLflow export needs mlflow: pip install 'neurocomp[mlflow]'") from None
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    except Exception as error:  # MLflow raises many kinds for a store it cannot open
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"cannot open the MLflow tracking store {tracking_uri or '(default)'}: {first}") from None
    return client, experiment_id


def flatten(node, prefix: str = "") -> dict[str, object]:
    """``{"train": {"lr": 0.001}}`` -> ``{"train.lr": 0.001}``; lists stay values."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {key: value for name, child in node.items() for key, value in flatten(child, f"{prefix}{name}.").items()}


def _metrics(record: RunRecord) -> list:
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    final = [Metric(key, float(value), stamp, 0) for key, value in flatten(record.metrics).items()
             if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)]
    per_epoch = [Metric(f"history.{key}", value, stamp, int(row.get("epoch", step)))
                 for step, row in enumerate(record.history()) for key, value in row.items()
                 if key != "epoch" and math.isfinite(value)]
    return final + per_epoch


def _tags(record: RunRecord) -> dict[str, str]:
    paths = sorted({entry["path"] for entry in record.model.get("kernels", [])}) or ["library"]
    return {_TAG: record.run_id, "neurocomp.status": record.status, "neurocomp.schema": str(record.schema),
            "neurocomp.code_commit": str(record.code.get("commit")), "neurocomp.kernel_paths": ",".join(paths),
            "neurocomp.dataset_md5": str(record.dataset.get("md5"))}


def _log(client, mlflow_run_id: str, record: RunRecord) -> None:
    from mlflow.entities import Param, RunTag

    params = [Param(key, json.dumps(value) if not isinstance(value, str) else value)
              for key, value in flatten(record.config).items()]
    entries = {"params": params, "metrics": _metrics(record), "tags": [RunTag(k, v) for k, v in _tags(record).items()]}
    for kind, items in entries.items():
        for start in range(0, len(items), _BATCH[kind]):
            client.log_batch(mlflow_run_id, **{kind: items[start:start + _BATCH[kind]]})
    for name in ("run.json", "history.csv", "predictions.npz"):
        if (record.directory / name).exists():
            client.log_artifact(mlflow_run_id, str(record.directory / name))


def export_mlflow(results: str | Path, tracking_uri: str | None = None) -> dict[str, int]:
    """Export every record under ``results`` (a results folder, its ``runs/`` or one run folder);
    returns how many were exported and how many were there already."""
    results = Path(results)
    records = [RunRecord.read(results)] if (results / "run.json").exists() else load_runs(results, completed_only=False)
    if not records:
        raise UsageError(f"no run records under {results}")
    client, experiment_id = _client(tracking_uri)
    exported = present = 0
    for record in records:
        existing = client.search_runs([experiment_id], filter_string=f"tags.`{_TAG}` = '{record.run_id}'")
        finished = [run for run in existing if run.info.status == "FINISHED"]
        for run in existing:
            if run not in finished[:1]:
                client.delete_run(run.info.run_id)  # a killed export's half-logged run, or a duplicate
        if finished:
            present += 1
            continue
        created = client.create_run(experiment_id, tags={_TAG: record.run_id}, run_name=record.run_id)
        try:
            _log(client, created.info.run_id, record)
        except BaseException:
            client.set_terminated(created.info.run_id, "FAILED")  # deleted and redone by the next call
            raise
        client.set_terminated(created.info.run_id, "FINISHED")
        exported += 1
    return {"records": len(records), "exported": exported, "already there": present}
