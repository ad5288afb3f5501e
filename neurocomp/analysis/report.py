"""``results/REPRODUCTION.md``: for each study sweep, reported vs reproduced (mean ± std over seeds)
with the study's own paragraph on what differs and why, and a figure, all from run records.

The paragraph's figures are generated, never typed: a sweep's description names them with
placeholders that are filled from the same runs as its table, so prose and table cannot disagree.

    {cfc:test.auc}                 mean over seeds of the cfc row            .871
    {cfc:test.auc:pm}              mean +- sample std                        .871 +- .014
    {cfc:test.auc:std} {cfc:n}     the std alone; the number of seeds        .014   3
    {ltc[sequence=rows]:test.auc}  the row whose dataset or variant contains the text in brackets (a
                                   dataset's whole name: that dataset only)
    {cnn[retina & params=40000]:test.auc}  ... each of several texts joined by &
    {lstm:delta}                   ΔAUC vs the sweep's reference model       +.016 [+.008, +.025]
    {reported cfc:test.auc}        the study's own number (its reported row) .890

A placeholder that matches no row, or several, stops the report with the reason.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..core.files import atomic_write
from ..runs.record import load_runs, uncommitted_sources
from .plots import plot
from ..runs.sweep import load_sweep, run_ids
from ..core.errors import UsageError
from .table import (Group, build_table, group_runs, load_reported, mean_std, paired_auc_difference,
                    reference_group, render)

_PLACEHOLDER = re.compile(r"\{(?P<reported>reported )?(?P<model>[\w-]+)(?:\[(?P<variant>[^\]]+)\])?"
                          r":(?P<metric>[\w.]+)(?::(?P<form>pm|std))?\}")


def write_report(sweep_paths: list[str], results: str | Path, output: str | Path, metrics: tuple[str, ...],
                 reference: str | None = None, title: str = "Reproduction of the published studies",
                 figures: str | Path | None = None, *, dirty: bool = False) -> Path:
    """Write the markdown report to ``output`` (atomically) and its figures to ``figures`` (default: the
    ``figures`` folder beside it); returns the path. ``dirty`` marks a report made from uncommitted
    code or configs (see :func:`clean_tree`).

    The text depends only on the records and the code that reads them, never on the commit it is
    generated at, so ``neurocomp report --all --check`` can compare it at any later commit."""
    output = Path(output)
    figures = Path(figures) if figures is not None else output.parent / "figures"
    all_runs = {run.run_id: run for run in load_runs(results)}
    studies = []  # (path, sweep, ids wanted, runs recorded, reported rows, filled description)
    for path in sweep_paths:
        sweep = load_sweep(path)
        wanted = run_ids(sweep)
        runs = [all_runs[name] for name in sorted(wanted) if name in all_runs]
        reported = load_reported(sweep.reported) if sweep.reported else []
        # Every placeholder is filled before any figure is drawn: a typo stops the report, no file written.
        prose = fill(sweep.description.strip(), runs, reported, sweep.reference or reference) if sweep.description else None
        studies.append((path, sweep, wanted, runs, reported, prose))
    sections = []
    used = []
    for path, sweep, wanted, runs, reported, prose in studies:
        used += runs
        sections += ["", f"## {sweep.title}", "", f"Sweep: `{path}` ({len(runs)} of {len(wanted)} runs recorded).", ""]
        if sweep.ablation and runs:
            sections += [*(prose and [prose, ""] or []), *_ablation(sweep, all_runs, figures / Path(path).stem, output.parent)]
            continue
        if runs or reported:
            compared = sweep.reference or reference  # the sweep's own reference, else the command's
            has_reference = any(run.identity[1] == compared for run in runs)
            headers, rows, best = build_table(runs, metrics, reported=reported, reference=compared if has_reference else None,
                                              label=sweep.label)
            sections += [render(headers, rows, best, "markdown"), ""]
        if runs:
            figure = plot(runs, "params-vs-metric", figures / f"{Path(path).stem}-params-vs-auc.png", metric="test.auc")
            sections += [f"![test AUC vs trainable parameters]({figure.relative_to(output.parent)})", ""]
        if len({run.identity[0] for run in runs}) > 1:
            sections += _across_datasets(runs, figures / Path(path).stem, output.parent)
        if prose:
            sections += [prose, ""]
    unique = list({run.run_id: run for run in used}.values())  # a run shared by two sweeps is one record
    text = "\n".join(_preamble(title, results, unique, dirty=dirty) + sections).rstrip() + "\n"
    atomic_write(output, lambda stream: stream.write(text.encode()))
    return output


def clean_tree(allow_dirty: bool) -> bool:
    """Whether the code and configs are committed; UsageError when they are not, unless
    ``allow_dirty`` (the caller then marks its report with ``dirty=True``)."""
    changed = uncommitted_sources()
    if changed and not allow_dirty:
        raise UsageError(f"uncommitted changes to {', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''}: "
                         "commit them first, or pass --allow-dirty (the report then says so)")
    return not changed


def _preamble(title: str, results: str | Path, runs: list, *, dirty: bool) -> list[str]:
    commits = sorted({(run.code.get("commit") or "")[:7] or "an installed neurocomp" for run in runs})
    return [
        f"# {title}",
        "",
        *(["**Made from a tree with uncommitted changes to code or configs (`--allow-dirty`): no commit "
           "reproduces it.**", ""] if dirty else []),
        f"Generated by `neurocomp report` from {len(runs)} run records under `{results}`, trained by the code at "
        f"{_plural(commits, 'commit')} {', '.join(commits) or '-'}; every number below is computed from saved "
        "predictions (test split evaluated once, after model selection on the validation split), and every figure "
        "in the prose is filled in from the same records. Cells are mean ± sample std over seeds (and, for "
        "rate-coded models, `draws ±` the spread over 10 draws of spike trains); n is the number of seeds; best "
        "means are bold, never on a row flagged for one-class predictions; `path` and `code` say which kernel path "
        "and which commit made each row; `reported` rows are the publications' own numbers.",
    ]


def _plural(items: list, word: str) -> str:
    return word if len(items) == 1 else f"{word}s"


def _ablation(sweep, runs: dict, stem: Path, root: Path) -> list[str]:
    """An ablation sweep's section: its variants ranked by the sweep's validation metric, and a figure."""
    from .ablation import ablation_results, plot_ablation, render_ablation

    results = ablation_results(sweep, runs)
    figure = plot_ablation(results, sweep.ablation, stem.with_name(f"{stem.name}-ablation.png"))
    return [*render_ablation(results, sweep.ablation), "", f"![{sweep.ablation} per variant]({figure.relative_to(root)})", ""]


def _across_datasets(runs: list, stem: Path, root: Path) -> list[str]:
    """A sweep over several datasets: test AUC vs parameter budget and vs energy, a panel per dataset,
    then at each budget the models' ranks across datasets with Friedman's test and the
    critical-difference diagram (or why they cannot be ranked)."""
    from .plots import recorded_energies
    from .ranking import plot_critical_difference, rank_runs, render_ranking

    drawn = [(plot(runs, "budgets", stem.with_name(f"{stem.name}-budgets.png")), "test AUC vs parameter budget")]
    if recorded_energies(runs):
        drawn.append((plot(runs, "pareto", stem.with_name(f"{stem.name}-pareto.png")), "test AUC vs energy per inference"))
    sections = [f"![{what}]({figure.relative_to(root)})" for figure, what in drawn] + [""]
    budgets: dict = {}
    for run in runs:
        budgets.setdefault(run.config.get("params"), []).append(run)
    for budget, chosen in sorted(budgets.items(), key=lambda item: item[0] or 0):
        if len({run.identity[1] for run in chosen}) < 3:
            continue  # ranking compares three models or more: nothing to say about fewer
        heading = f"Ranks across datasets{f' at {budget:,} parameters' if budget else ''}"
        try:
            ranking = rank_runs(chosen, "test.auc")
        except UsageError as error:
            sections += [f"{heading}: not ranked ({error}).", ""]
            continue
        figure = plot_critical_difference(ranking, stem.with_name(f"{stem.name}-ranks-{budget or 'all'}.png"))[0]
        sections += [f"### {heading}", "", render_ranking(ranking), "",
                     f"![critical-difference diagram]({figure.relative_to(root)})", ""]
    return sections


def fill(text: str, runs: list, reported: list[dict], reference: str | None) -> str:
    """``text`` with every placeholder (see the module docstring) replaced by its figure."""
    groups = group_runs(runs)

    def figure(match: re.Match) -> str:
        name, variant, metric, form = match["model"], match["variant"], match["metric"], match["form"]
        if match["reported"]:
            rows = [row for row in reported if row.get("model") == name and (variant or "") in str(row.get("label", ""))]
            values = [row["metrics"][metric] for row in rows[:1] if metric in row["metrics"]]
            if len(rows) != 1 or not values:
                raise UsageError(f"report: {match[0]} matches {len(rows)} reported rows; name exactly one with [label text]")
            return _number(values[0])
        group = _one_group(groups, name, variant, match[0])
        if metric == "n":
            return str(len(group.runs))
        if metric == "delta":
            compared = reference_group(group, groups, reference) if reference else None
            result = paired_auc_difference(group.runs, compared.runs) if compared else None
            if result is None:
                raise UsageError(f"report: {match[0]} needs paired test predictions of the sweep's reference model")
            return "{} [{}, {}]".format(*(_number(value, signed=True) for value in result))
        mean, std = mean_std(group.values(metric))
        if math.isnan(mean):
            raise UsageError(f"report: {match[0]}: no run of that row has {metric}")
        if form == "std":
            return _number(std)
        return f"{_number(mean)} +- {_number(std)}" if form == "pm" and not math.isnan(std) else _number(mean)

    return _PLACEHOLDER.sub(figure, text)


def _one_group(groups: list[Group], model: str, variant: str | None, placeholder: str) -> Group:
    # [retina & params=40000]: every &-separated text must be in the row's dataset or variant; a text that
    # is a dataset's whole name names that dataset only ([pneumonia] is not pneumonia-balanced then).
    datasets = {g.dataset for g in groups}

    def matches(part: str, group: Group) -> bool:
        return part == group.dataset if part in datasets else part in f"{group.dataset} {group.variant}"

    matching = [g for g in groups if g.model == model and (variant is None or all(
        matches(part.strip(), g) for part in variant.split("&")))]
    if len(matching) != 1:
        raise UsageError(f"report: {placeholder} matches {len(matching)} rows; name one with [text of its variant]")
    return matching[0]


def _number(value: float, *, signed: bool = False) -> str:
    """A metric as the prose writes it: three decimals, no leading zero (.871, -.089, +.016)."""
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text.replace("0.", ".", 1) if abs(value) < 1 else text
