"""The published results: every ``results/*.md`` regenerated from the committed records, and checked.

``results/reports.yaml`` lists each report with the sweeps it is made from (paths from the project
root, where the commands run):

    reports:
      - output: results/REPRODUCTION.md
        title: Reproduction of the published studies
        sweeps: [configs/sweeps/snn-pneumonia.yaml, configs/sweeps/lnn-breast.yaml]
        metric: [test.accuracy, test.auc]      # optional: the table's columns

``neurocomp report --all`` rewrites every report, its figures and ``results/MANIFEST.csv`` (each
record's files with their size and sha256, and whether they ship in git). ``--check`` writes
nothing: it regenerates into a temporary folder and shows how the committed reports differ, and
checks every record's files against the hashes the record holds.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..core.errors import UsageError
from ..core.files import atomic_write, sha256
from ..runs.record import load_runs
from .report import write_report
from ..runs.sweep import load_sweep, run_ids
from .table import DEFAULT_METRICS

MANIFEST = "MANIFEST.csv"
_FIGURE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@dataclass(frozen=True)
class Report:
    """One published report: where it goes and what it is made from."""

    output: str
    sweeps: tuple[str, ...]
    title: str = "Reproduction of the published studies"
    metric: tuple[str, ...] = DEFAULT_METRICS
    reference: str | None = None


def load_reports(results: str | Path) -> list[Report]:
    """The reports listed in ``results/reports.yaml``; UsageError when it is missing or malformed."""
    path = Path(results) / "reports.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist: it lists the reports that `report --all` makes") from None
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"{path} is not readable YAML ({type(error).__name__})") from None
    entries = data.get("reports") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path} must hold a list `reports` of {{output, sweeps[, title, metric, reference]}}")
    reports = []
    for entry in entries:
        try:
            reports.append(Report(**{key: tuple(value) if isinstance(value, list) else value for key, value in entry.items()}))
        except TypeError as error:
            raise UsageError(f"{path}: {entry!r}: {error}") from None
    return reports


def missing_runs(reports: list[Report], results: str | Path) -> dict[str, list[str]]:
    """Report output -> the ids of its sweeps' runs that have no completed record under ``results``."""
    recorded = {run.run_id for run in load_runs(results)}
    return {report.output: sorted(set().union(*(run_ids(load_sweep(path)) for path in report.sweeps)) - recorded)
            for report in reports}


def manifest(results: str | Path) -> str:
    """``MANIFEST.csv``'s text: one row per file of every run record (the record itself included)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run_id", "status", "file", "bytes", "sha256", "shipped"])
    for run in load_runs(results, completed_only=False):
        record = run.directory / "run.json"
        writer.writerow([run.run_id, run.status, "run.json", record.stat().st_size, sha256(record), "yes"])
        for name, facts in sorted(run.files.items()):
            writer.writerow([run.run_id, run.status, name, facts["bytes"], facts["sha256"], "yes" if facts["shipped"] else "no"])
    return buffer.getvalue()


def regenerate(results: str | Path, *, dirty: bool = False) -> list[Path]:
    """Rewrite every listed report (and its figures) and the manifest; returns what was written."""
    reports = load_reports(results)
    _refuse_missing(reports, results)
    written = [write_report(list(report.sweeps), results, report.output, report.metric, report.reference, report.title,
                            dirty=dirty) for report in reports]
    target = Path(results) / MANIFEST
    text = manifest(results)
    atomic_write(target, lambda stream: stream.write(text.encode()))
    return [*written, target]


def check(results: str | Path) -> list[str]:
    """What differs between the committed reports, figures and manifest and what the records give,
    as unified diffs and one-line findings; empty when everything matches. Writes nothing."""
    reports = load_reports(results)
    _refuse_missing(reports, results)
    findings = _file_mismatches(results)
    with tempfile.TemporaryDirectory(prefix="neurocomp-check-") as scratch:
        for report in reports:
            committed = Path(report.output)
            fresh = write_report(list(report.sweeps), results, Path(scratch) / committed.name, report.metric,
                                 report.reference, report.title, figures=Path(scratch) / "figures")
            findings += _diff(committed, fresh.read_text())
            findings += [f"{committed}: links {link}, which does not exist"
                         for link in _FIGURE_LINK.findall(fresh.read_text()) if not (committed.parent / link).exists()]
    findings += _diff(Path(results) / MANIFEST, manifest(results))
    return findings


def _refuse_missing(reports: list[Report], results: str | Path) -> None:
    for output, missing in missing_runs(reports, results).items():
        if missing:
            raise UsageError(f"{output}: {len(missing)} runs of its sweeps have no completed record under {results}/runs "
                             f"(e.g. {missing[0]}); commit them, or re-run the sweeps")


def _diff(committed: Path, fresh: str) -> list[str]:
    old = committed.read_text() if committed.exists() else ""
    if old == fresh:
        return []
    lines = difflib.unified_diff(old.splitlines(keepends=True), fresh.splitlines(keepends=True),
                                 f"{committed} (committed)", f"{committed} (from the records)", n=1)
    return ["".join(lines)]


def _file_mismatches(results: str | Path) -> list[str]:
    """Each record's files that are missing (where they ship) or whose sha256 is not the record's."""
    findings = []
    for run in load_runs(results, completed_only=False):
        if not run.files:
            findings.append(f"{run.directory}: the record lists no files (run `neurocomp migrate`)")
        for name, facts in run.files.items():
            path = run.directory / name
            if not path.exists():
                if facts["shipped"]:
                    findings.append(f"{path}: missing (the record lists it as shipped)")
            elif sha256(path) != facts["sha256"]:
                findings.append(f"{path}: sha256 differs from the record's")
    return findings

