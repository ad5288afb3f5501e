"""Figures from run records (matplotlib, no display needed): metric vs parameters, metric vs parameter
budget and vs energy (one panel per dataset, Pareto front drawn), training curves, ROC curves,
reliability diagrams, SNN spike rates per layer, and the NCP wiring diagram.

Every figure draws a model in the same colour (its place among the registered models) and with its
paradigm family's marker, so a reader matches a paradigm across figures at a glance."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.errors import UsageError
from ..runs.record import RunRecord
from ..core.registry import FAMILIES, MODELS
from ..core.quantities import lower_is_better
from .table import group_runs, mean_std, off_the_front

KINDS = ("params-vs-metric", "budgets", "pareto", "curves", "roc", "reliability", "spikes", "wiring")
PANEL_KINDS = ("budgets", "pareto")  # one panel per dataset
MARKERS = dict(zip(FAMILIES, "os^Dv"))  # paradigm family -> marker; a new family gets "x"
ENERGIES = (("cost.energy_with_memory_pj", "with memory accesses"), ("cost.energy_pj", "arithmetic only"))


def family(model: str) -> str:
    """The paradigm family the model's registration declares ("other" for one not installed here)."""
    return MODELS.get(model).meta.family if model in MODELS else "other"


def style(model: str) -> dict:
    """The colour and marker ``model`` has in every figure: its place among the registered models in
    matplotlib's 20-colour cycle, its family's marker."""
    import matplotlib

    names = MODELS.names()
    colour = matplotlib.colormaps["tab20"](names.index(model) % 20 if model in names else 19)
    return {"color": colour, "marker": MARKERS.get(family(model), "x")}


def pyplot():
    """matplotlib's pyplot on its file-only backend, imported when a figure is drawn: importing it
    costs every other command ~0.4 s."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no window, no display server
    import matplotlib.pyplot

    return matplotlib.pyplot


def _label(group) -> str:
    return " ".join(part for part in (group.dataset, group.model, group.encoder, group.variant) if part)


def params_vs_metric(runs: list[RunRecord], metric: str, axes) -> None:
    """One marker per model family, error bars over seeds, log-scaled parameter axis."""
    for group in group_runs(runs):
        mean, std = mean_std(group.values(metric))
        params = group.runs[0].value("params")
        if params is None or math.isnan(mean):
            continue
        axes.errorbar(params, mean, yerr=0 if math.isnan(std) else std, **style(group.model),
                      capsize=3, linestyle="none", label=f"{_label(group)} (n={len(group.runs)})")
    axes.set_xscale("log")
    axes.set_xlabel("trainable parameters")
    axes.set_ylabel(metric)
    axes.legend(fontsize=7)


def _series(runs: list[RunRecord], x: str, metric: str) -> dict[tuple[str, str], list[tuple[float, float, float, float]]]:
    """Per (dataset, row label without the dataset): ``(x mean, metric mean, metric std, x std)`` of each
    row, sorted by x; rows of one model at several budgets form one series."""
    groups = group_runs(runs)
    encoders: dict[tuple[str, str], set] = {}
    for group in groups:
        encoders.setdefault((group.dataset, group.model), set()).add(group.encoder)
    # A model fed one way on each dataset is one series under its name, whichever encoder a dataset
    # needs (slices for volumes); one fed several ways on a dataset is a series per encoder.
    several = {model for (_, model), names in encoders.items() if len(names) > 1}
    series: dict[tuple[str, str], list] = {}
    for group in groups:
        xs, (mean, std) = group.values(x), mean_std(group.values(metric))
        if not xs or math.isnan(mean):
            continue
        label = f"{group.model} {group.encoder}" if group.model in several else group.model
        series.setdefault((group.dataset, label), []).append((float(np.mean(xs)), mean, std, float(np.std(xs))))
    return {key: sorted(points) for key, points in series.items()}


def budgets(runs: list[RunRecord], metric: str, panels) -> None:
    """Per dataset panel, ``metric`` vs trainable parameters: one line per model across its budgets,
    error bars over seeds."""
    budgets_asked = sorted({run.config["params"] for run in runs if run.config.get("params")})
    for axes, (dataset, rows) in zip(panels, _by_dataset(_series(runs, "params", metric)).items()):
        for label, points in rows.items():
            xs, means, stds, _ = zip(*points)
            axes.errorbar(xs, means, yerr=[0 if math.isnan(v) else v for v in stds], capsize=3, label=label,
                          **style(label.split()[0]))
        _log_axis(axes, ticks=budgets_asked)
        axes.set(title=dataset, xlabel="trainable parameters", ylabel=f"{metric} (mean ± std over seeds)")
        axes.grid(alpha=0.3)


def _log_axis(axes, ticks: list[float] = ()) -> None:
    """A log x axis labelled 10k, 2M, ...: at ``ticks`` (the budgets asked for) where given, else at
    1, 2 and 5 per decade over a short range and at decades over a long one. Matplotlib's own labels
    (2x10^4) crowd or vanish when the data spans less than a decade."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    axes.set_xscale("log")
    low, high = axes.get_xlim()
    if ticks:
        locator = FixedLocator(ticks)
    else:
        locator = LogLocator(subs=(1.0, 2.0, 5.0) if high / low < 100 else (1.0,))
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _si(value)))
    axes.xaxis.set_minor_formatter(NullFormatter())


def _si(value: float) -> str:
    """12000 -> 12k, 3.5e6 -> 3.5M: a count or an energy in a few characters."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def recorded_energies(runs: list[RunRecord]) -> list[tuple[str, str]]:
    """The energy estimates (quantity, how) some of ``runs`` record (older records lack the one with memory)."""
    return [(energy, how) for energy, how in ENERGIES if any(run.value(energy) is not None for run in runs)]


def pareto(runs: list[RunRecord], metric: str, panels) -> None:
    """Per dataset, ``metric`` vs estimated energy per inference, with and without memory accesses
    (a row each, where the records have it), every row a point (error bars over seeds) and the Pareto
    front (no other row both better and cheaper) circled and joined by a step line. Rows flagged for
    one-class predictions or at chance (:func:`off_the_front`) are drawn but never on the front."""
    energies = recorded_energies(runs)
    columns = len(panels) // len(energies)
    contenders = [run for group in group_runs(runs) if off_the_front(group) is None for run in group.runs]
    for row, (energy, how) in enumerate(energies):
        grouped = _by_dataset(_series(runs, energy, metric))
        eligible = _by_dataset(_series(contenders, energy, metric))
        for axes, (dataset, rows) in zip(panels[row * columns:(row + 1) * columns], grouped.items()):
            for label, series in rows.items():
                for x, mean, std, x_std in series:
                    axes.errorbar(x, mean, yerr=0 if math.isnan(std) else std, xerr=x_std or None, capsize=3,
                                  linestyle="none", label=label, **style(label.split()[0]))
            points = [(x, mean) for series in eligible.get(dataset, {}).values() for x, mean, _, _ in series]
            front = _pareto_front(points, lower_is_better(metric))
            if front:
                axes.step(*zip(*front), where="post", color="grey", linestyle="--", marker="o", markersize=13,
                          markerfacecolor="none", label="Pareto front")
            _log_axis(axes)
            axes.set(title=dataset, xlabel=f"estimated energy per inference, pJ ({how})", ylabel=metric)
            axes.grid(alpha=0.3)


def _by_dataset(series: dict) -> dict[str, dict]:
    grouped: dict[str, dict] = {}
    for (dataset, label), points in sorted(series.items()):
        grouped.setdefault(dataset, {})[label] = points
    return grouped


def _pareto_front(points: list[tuple[float, float]], lower_better: bool) -> list[tuple[float, float]]:
    """The points (cost, value) that no other point beats on both: cheaper and better, sorted by cost."""
    front, best = [], math.inf if lower_better else -math.inf
    for cost, value in sorted(points, key=lambda p: (p[0], p[1] if lower_better else -p[1])):
        if (value < best) if lower_better else (value > best):
            front.append((cost, value))
            best = value
    return front


def curves(runs: list[RunRecord], metric: str, axes) -> None:
    """Training loss (dashed) and a validation metric per epoch: mean and a ±std band over seeds."""
    column = "val_" + metric.split(".", 1)[-1]
    for group in group_runs(runs):
        histories = [run.history() for run in group.runs]
        for key, style in (("train_loss", "--"), (column, "-")):
            series = [[row[key] for row in h if key in row] for h in histories if h]
            length = min((len(s) for s in series), default=0)
            if not length:
                continue
            values = np.array([s[:length] for s in series])
            epochs = np.arange(1, length + 1)
            line, = axes.plot(epochs, values.mean(axis=0), style, label=f"{_label(group)} {key}")
            if len(values) > 1:
                spread = values.std(axis=0, ddof=1)
                axes.fill_between(epochs, values.mean(axis=0) - spread, values.mean(axis=0) + spread,
                                  color=line.get_color(), alpha=0.2)
    axes.set_xlabel("epoch")
    axes.set_ylabel(f"train loss (dashed), {column} (solid)")
    axes.legend(fontsize=7)


def roc(runs: list[RunRecord], axes) -> None:
    """The test ROC curve of each binary run (positive class as recorded)."""
    from sklearn.metrics import roc_curve  # here: every other command would pay ~0.6 s for it

    for run in runs:
        predictions = run.predictions()
        positive = run.dataset.get("positive")
        if predictions is None or positive is None:
            continue
        labels, probabilities = predictions
        fpr, tpr, _ = roc_curve(labels == positive, probabilities[:, positive])
        axes.plot(fpr, tpr, label=f"{run.run_id} (AUC {run.value('test.auc'):.3f})")
    axes.plot([0, 1], [0, 1], ":", color="grey")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(fontsize=6)


def reliability_diagram(runs: list[RunRecord], axes) -> None:
    """Observed frequency vs predicted probability on test, per row pooled over its seeds: the
    positive class's probability for binary runs, every label's for multi-label ones, the predicted
    class's confidence otherwise."""
    from ..training.metrics import ECE_BINS, expected_calibration_error, reliability

    for group in group_runs(runs):
        outcomes, confidences = [], []
        for run in group.runs:
            predictions = run.predictions()
            if predictions is None:
                continue
            labels, probabilities = predictions
            positive = run.dataset.get("positive")
            if labels.ndim == 2:  # multi-label: every label's probability of every image
                outcomes.append(labels.ravel() == 1)
                confidences.append(probabilities.ravel())
            elif positive is None:
                outcomes.append(probabilities.argmax(axis=1) == labels)
                confidences.append(probabilities.max(axis=1))
            else:
                outcomes.append(labels == positive)
                confidences.append(probabilities[:, positive])
        if not outcomes:
            continue
        outcome, confidence = np.concatenate(outcomes), np.concatenate(confidences)
        mean_confidence, observed, _ = reliability(outcome, confidence)
        ece = expected_calibration_error(outcome, confidence)
        axes.plot(mean_confidence, observed, marker=MARKERS.get(family(group.model), "x"),
                  label=f"ECE {ece:.3f}, n={len(group.runs)}: {_label(group)}")  # the ECE first: labels run long
    axes.plot([0, 1], [0, 1], ":", color="grey")
    axes.set_xlabel(f"predicted probability ({ECE_BINS} bins)")
    axes.set_ylabel("observed frequency")
    axes.legend(fontsize=6)


def spikes(runs: list[RunRecord], axes) -> None:
    """Spike rate per layer (spikes per neuron per step on test inputs) of each spiking run."""
    spiking = [run for run in runs if run.model.get("spike_rates")]
    if not spiking:
        raise UsageError("no spiking runs with recorded spike rates among these records")
    width = 0.8 / len(spiking)
    for index, run in enumerate(spiking):
        rates = run.model["spike_rates"]
        axes.bar(np.arange(len(rates)) + index * width, rates, width, label=run.run_id)
    axes.set_xlabel("spiking layer")
    axes.set_ylabel("spike rate (spikes / neuron / step)")
    axes.legend(fontsize=6)


def wiring(runs: list[RunRecord], axes) -> None:
    """The NCP wiring of the first liquid run, drawn by ncps (sensory inputs omitted)."""
    from ..runs.pipeline import load_trained

    liquid = [run for run in runs if "wiring" in run.model]
    if not liquid:
        raise UsageError("no LTC/CfC runs among these records")
    record, _, _, model = load_trained(liquid[0].directory, weights=False)
    pyplot().sca(axes)  # ncps draws on the current axes
    model.core.wiring.draw_graph(layout="shell", neuron_colors={"inter": "tab:blue", "command": "tab:orange",
                                                                "motor": "tab:green"})
    axes.set_title(f"{record.run_id}: {model.describe()['synapses']['effective']} effective synapses")


def plot(runs: list[RunRecord], kind: str, output: str | Path, metric: str = "test.auc") -> Path:
    """Draw ``kind`` from ``runs`` into ``output`` (PNG, SVG or PDF by its suffix)."""
    if kind not in KINDS:
        raise UsageError(f"unknown plot kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if not runs:
        raise UsageError("no completed run records to plot")
    output = Path(output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"{output}: the plot file must end in .png, .svg or .pdf")
    plt = pyplot()
    if kind in PANEL_KINDS:
        return _panels(runs, kind, output, metric)
    figure, axes = plt.subplots(figsize=(8, 5))
    try:
        if kind == "params-vs-metric":
            params_vs_metric(runs, metric, axes)
        elif kind == "curves":
            curves(runs, metric, axes)
        else:
            {"roc": roc, "reliability": reliability_diagram, "spikes": spikes, "wiring": wiring}[kind](runs, axes)
        figure.tight_layout()
        save(figure, output, (output.suffix,), dpi=110)
    finally:
        plt.close(figure)
    return output


def _panels(runs: list[RunRecord], kind: str, output: Path, metric: str) -> Path:
    """A figure of one panel per dataset (and, for ``pareto``, a row per energy estimate), the legend
    outside the data, one entry per model."""
    datasets = sorted({run.identity[0] for run in runs})
    rows = len(recorded_energies(runs)) if kind == "pareto" else 1
    if not rows:
        raise UsageError("no run record has an energy estimate (cost.energy_pj)")
    plt = pyplot()
    figure, axes = plt.subplots(rows, len(datasets), figsize=(4.5 * len(datasets), 3.8 * rows), squeeze=False)
    try:
        {"budgets": budgets, "pareto": pareto}[kind](runs, metric, list(axes.flat))
        entries = {}
        for panel in axes.flat:
            for handle, label in zip(*panel.get_legend_handles_labels()):
                entries.setdefault(label, handle)
        names = MODELS.names()  # the legend lists models in registration order, as their colours go
        entries = dict(sorted(entries.items(), key=lambda item: (names.index(item[0].split()[0])
                                                                 if item[0].split()[0] in names else len(names), item[0])))
        figure.legend(entries.values(), entries.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        figure.tight_layout()
        save(figure, output, tuple(dict.fromkeys((output.suffix, ".svg"))), dpi=110)  # SVG too: a paper's figure
    finally:
        plt.close(figure)
    return output


def save(figure, path: str | Path, suffixes: tuple[str, ...] = (".png", ".svg"), dpi: int = 130) -> list[Path]:
    """Write ``figure`` as ``path`` with each of ``suffixes`` (each atomically: a temp file, then a
    rename, so a reader never sees half a figure); the paths written. UsageError when one cannot be."""
    import matplotlib

    written = []
    for suffix in suffixes:
        output = Path(path).with_suffix(suffix)
        temporary = output.with_name(f".{output.name}.tmp{suffix}")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            # No date and fixed element ids: the same records give the same bytes, so a regenerated
            # report leaves its figures unchanged in git.
            with matplotlib.rc_context({"svg.hashsalt": "neurocomp"}):
                figure.savefig(temporary, dpi=dpi, bbox_inches="tight",
                               metadata={"Date": None} if suffix in (".svg", ".pdf") else None)
            temporary.replace(output)
        except OSError as error:
            raise UsageError(f"cannot write {output}: {error.strerror or error}") from None
        written.append(output)
    return written
