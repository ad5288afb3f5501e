"""An equal tuning budget per paradigm: ``neurocomp tune FILE`` searches every (dataset, model) of a
tune file with the same budget of training epochs, each trial scored on the validation split only as
the mean over several seeds, then re-runs each best configuration with several seeds through the
normal run path and reports how much the selection flattered it.

The budget is ``trials`` full-length trials' worth of epochs (``trials x train.epochs x trial
seeds``): a pruned trial spends the epochs it ran, so a paradigm whose bad trials are pruned early
gets more trials, never more training. Scoring each trial on two seeds or more halves the variance
the best-of-N selection feeds on (BreastMNIST has 78 validation images); the re-run's seeds that no
trial trained on measure what remains (the optimism: the best trial's score minus the same
configuration's on fresh seeds).

Each (dataset, model) is one Optuna study in one storage (an SQLite file under the results folder,
or any Optuna RDB URL, so several processes or machines tune one file): a seeded TPE sampler, a
median pruner on the per-epoch validation value of the first objective, and trials counted as
finished when complete or pruned. A trial that predicts one class for every validation image (at
0.5) is infeasible (an Optuna constraint): TPE learns to avoid its region and it is never chosen as
best, however high its AUC, because ranking well says nothing about a classifier that answers
"benign" to everyone; only when every trial of a study is one-class is its best kept, and flagged.
A killed tune resumes: finished trials stay in the storage, the one that was running is failed by
Optuna's heartbeat and does not count. The search space is the
file's shared keys (``train.lr``, ...) plus what each model's registration declares
(:class:`neurocomp.core.registry.ModelInfo` ``space``). With two objectives or more (e.g. ``val.auc``
and ``cost.energy_pj``) the studies are multi-objective, unpruned, and the Pareto front is kept.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import time
import warnings
from datetime import datetime
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import yaml

from ..core.quantities import METRIC_NAMES, lower_is_better
from ..core.config import load_yaml, resolve, set_dotted
from ..core.errors import RunFailed, UsageError, one_line_warnings
from .processes import die_with_parent
from ..core.registry import MODELS
from .space import Spec, candidates, from_trial_params, parse_spec, suggest

TUNE_KEYS = ("title", "description", "base", "datasets", "models", "objective", "trials", "seeds", "trial_seeds", "space")
COST_QUANTITIES = ("params.trainable", "cost.energy_pj", "cost.energy_with_memory_pj", "cost.macs", "cost.acs",
                   "cost.dense_macs", "cost.memory_accesses")
HEARTBEAT_SECONDS, GRACE_SECONDS = 20, 60
POLL_SECONDS = 5  # how often a process whose budget is taken by live trials looks again
ONE_CLASS = "one_class_on_validation"  # the constraint: 1 when a trial predicts one class for every validation image
EPOCHS_RUN, TRIAL_SEEDS = "epochs_run", "trial_seeds"  # a trial's spent epochs; a study's trial seeds


@dataclass
class TuneFile:
    """A parsed tune file: the base config, datasets x model variants to tune, objectives, budget."""

    path: Path
    base: dict
    datasets: list[str]
    variants: list[dict]  # dotted keys, each naming model.name (and e.g. its encoder or loss)
    objectives: list[str]  # quantities; the first is a validation one and drives the pruner
    trials: int  # the budget, in full-length trials: trials x epochs x len(trial_seeds) epochs per study
    seeds: list[int]  # the best configuration is re-run with each
    trial_seeds: list[int]  # every trial trains each and is scored by the mean
    space: dict[str, Spec]  # shared by every model, dotted config keys
    title: str
    description: str

    def trial_epochs(self, dataset: str, variant: dict) -> int:
        """The epochs one full-length trial of (``dataset``, ``variant``) trains, over its seeds."""
        return resolve(self.config(dataset, variant, {})).train.epochs * len(self.trial_seeds)

    @property
    def name(self) -> str:
        return self.path.stem

    def model_space(self, model: str) -> dict[str, Spec]:
        """The keys searched for ``model``: the shared ones and what its registration declares."""
        declared = MODELS.get(model).meta.space
        return {**self.space, **{f"model.{key}": parse_spec(f"{model}: model.{key}", spec) for key, spec in declared.items()}}

    def config(self, dataset: str, variant: dict, values: dict) -> dict:
        """The nested config of one trial or re-run: base <- dataset <- variant <- ``values``."""
        raw = copy.deepcopy(self.base)
        for key, value in [("dataset.name", dataset), *variant.items(), *values.items()]:
            set_dotted(raw, key, list(value) if isinstance(value, tuple) else value)
        return raw


def _quantities() -> list[str]:
    return ["val.loss", *(f"val.{name}" for name in METRIC_NAMES), *COST_QUANTITIES]


def load_tune(path: str | Path) -> TuneFile:
    """Read and check a tune file; UsageError (one line) on an unknown key, an unknown objective, a
    search-space key the config does not have or a range of the wrong type, before any trial."""
    path = Path(path)
    raw = load_yaml(path)
    unknown = sorted(set(raw) - set(TUNE_KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}; a tune file has {', '.join(TUNE_KEYS)}")
    datasets = raw.get("datasets")
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
        raise UsageError(f"{path}: datasets must be a non-empty list of dataset names or .npz paths")
    variants = [{"model.name": m} if isinstance(m, str) else m for m in raw.get("models") or []]
    if not variants or not all(isinstance(v, dict) and isinstance(v.get("model.name"), str) for v in variants):
        raise UsageError(f"{path}: models must be a non-empty list of model names or mappings with model.name")
    names = [v["model.name"] for v in variants]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # a study is named by dataset and model: two variants of one model would share it
        raise UsageError(f"{path}: model {repeated[0]!r} is listed twice; a tune file tunes each model once "
                         "(give it its own tune file for another encoder or loss)")
    objectives = raw.get("objective", "val.auc")
    objectives = [objectives] if isinstance(objectives, str) else objectives
    valid = _quantities()
    if not isinstance(objectives, list) or not objectives or any(q not in valid for q in objectives):
        raise UsageError(f"{path}: objective {objectives!r}: each must be one of {', '.join(valid)}")
    if not objectives[0].startswith("val."):
        raise UsageError(f"{path}: the first objective must be a validation quantity (val.<metric>): it prunes trials")
    trials, seeds = raw.get("trials", 20), raw.get("seeds", [0, 1, 2])
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise UsageError(f"{path}: trials must be a whole number of at least 1, got {trials!r}")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UsageError(f"{path}: seeds must be a non-empty list of whole numbers")
    # Two seeds by default: a trial scored on one seed's validation split is too noisy to pick from.
    trial_seeds = raw.get("trial_seeds", seeds[:2])
    if (not isinstance(trial_seeds, list) or not trial_seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in trial_seeds)):
        raise UsageError(f"{path}: trial_seeds must be a non-empty list of whole numbers (the seeds every trial trains)")
    space = raw.get("space") or {}
    if not isinstance(space, dict):
        raise UsageError(f"{path}: space must map dotted config keys to ranges or lists of choices")
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise UsageError(f"{path}: base must be a mapping (a run config)")
    tune = TuneFile(path, base, datasets, variants, objectives, trials, seeds, trial_seeds,
                    {key: parse_spec(key, spec) for key, spec in space.items()},
                    raw.get("title") or path.stem, raw.get("description") or "")
    for dataset in datasets:
        for variant in variants:
            _check_space(tune, dataset, variant)
    return tune


def _check_space(tune: TuneFile, dataset: str, variant: dict) -> None:
    # Every end of every range and every choice must make a config the strict resolver accepts.
    space = tune.model_space(variant["model.name"])
    resolve(tune.config(dataset, variant, {}))
    for key, spec in space.items():
        for value in candidates(spec):
            try:
                resolve(tune.config(dataset, variant, {key: value}))
            except UsageError as error:
                raise UsageError(f"{tune.path}: search space {key} = {value!r} for {variant['model.name']}: {error}") from None


def validation_scores(config, report: Callable) -> dict:
    """Train ``config`` and score it on the validation split only (the test split is never loaded
    onto the device): every validation quantity, the trainable parameters and the cost per inference
    on a validation batch. ``report(result)`` sees the fit after every epoch (the pruner's hook)."""
    import torch

    from .. import kernels
    from ..training.cost import inference_cost
    from ..training.losses import training_loss
    from ..training.metrics import METRIC_NAMES, parameter_counts
    from .pipeline import prepare
    from ..training.trainer import evaluate, fit

    with kernels.backend(config.model.backend):
        device, dataset, encoder, model, splits = prepare(config, ("train", "val"))
        train, val = splits["train"], splits["val"]
        loss = training_loss(config.train, train.labels, dataset.num_classes)
        fit(model, encoder, train, val, config.train, loss=loss, positive=dataset.positive, progress=False, on_epoch=report)
        scored = evaluate(model, encoder, val, loss=loss, positive=dataset.positive, batch_size=config.train.batch_size,
                          seed=config.train.seed + 1, draws=config.eval.draws, precision=config.train.precision)
        generator = torch.Generator(device=device).manual_seed(config.train.seed + 1)
        cost = inference_cost(model.eval(), encoder(val.images[: config.train.batch_size].float().div_(255.0), generator),
                              input_spikes=encoder.spikes)
    return {"val.loss": scored.loss, **{f"val.{name}": scored.metrics[name] for name in METRIC_NAMES},
            "val.predicted_classes": scored.metrics["predicted_classes"], "params.trainable": parameter_counts(model)["trainable"],
            **{f"cost.{key}": cost[key] for key in ("energy_pj", "energy_with_memory_pj", "macs", "acs", "dense_macs",
                                                    "memory_accesses")}}


def open_storage(url: str):
    """Optuna's RDB storage at ``url`` with a heartbeat (a killed trial is failed, not left running);
    UsageError when it cannot be opened. Several processes may create a new storage at once: for
    SQLite a file lock beside the database lets one create its tables while the others wait; for a
    server, a creation that loses the race is tried again."""
    import optuna
    from filelock import FileLock

    def connect():
        with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what makes resuming safe
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                                              engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {})

    database = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    for attempt in range(3):
        try:
            if database and Path(database).parent.is_dir():
                with FileLock(f"{database}.lock", timeout=120):
                    return connect()
            return connect()
        except Exception as error:  # a bad URL, a missing driver, a folder that is not there: one line
            if attempt < 2 and "already exists" in str(error):
                time.sleep(1 + attempt)  # another process created the tables first
                continue
            raise UsageError(f"--storage {url}: cannot be opened ({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None


def study_name(tune: TuneFile, dataset: str, variant: dict) -> str:
    """The Optuna study of one (dataset, model variant) of ``tune``."""
    label = Path(dataset).stem if dataset.endswith(".npz") else dataset
    return f"{tune.name}/{label}/{variant['model.name']}"


def _finished(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def tune_study(tune_path: str, dataset: str, variant_index: int, trials: int, storage_url: str,
               threads: Optional[int]) -> dict:
    """Bring one study of the tune file to its epoch budget, ``trials`` full-length trials' worth (in
    this process, resumable); returns ``{"study", "finished", "pruned", "failed", "epochs", "budget_epochs"}``."""
    import optuna

    one_line_warnings()  # worker processes start with Python's multi-line format
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tune = load_tune(tune_path)
    variant = tune.variants[variant_index]
    space = tune.model_space(variant["model.name"])
    storage = open_storage(storage_url)
    name = study_name(tune, dataset, variant)
    single = len(tune.objectives) == 1
    full = tune.trial_epochs(dataset, variant)
    budget = trials * full
    directions = ["minimize" if lower_is_better(q) else "maximize" for q in tune.objectives]
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, directions=directions,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3) if single else optuna.pruners.NopPruner(),
    )
    study.set_user_attr(TRIAL_SEEDS, tune.trial_seeds)  # what every trial's score means (checked on resume)
    history_key = tune.objectives[0].replace(".", "_")

    def objective(trial):
        # A first heartbeat, then the mark that this trial's process is alive: Optuna fails a running
        # trial whose heartbeat went stale, but never one killed before its first beat (no heartbeat
        # at all), which _fail_unstarted catches by the missing mark.
        storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("started", True)
        # The trial is reserved in the storage (its number) before it trains: one whose number comes
        # after the budget is spent or reserved by live or finished trials is surplus, and fails
        # without training.
        if _committed(study, trial.number, full) >= budget:
            trial.set_user_attr("surplus", True)
            raise Surplus
        # Seeded by the trial's number: reproducible, and two processes never draw the same values;
        # the constant liar makes TPE treat running trials as taken.
        study.sampler = optuna.samplers.TPESampler(seed=tune.seeds[0] + trial.number, constant_liar=True)
        values = {key: suggest(trial, key, spec) for key, spec in space.items()}
        per_seed, spent = [], 0
        for index, seed in enumerate(tune.trial_seeds):
            config = resolve(tune.config(dataset, variant, {**values, "train.seed": seed}))
            config.train.threads = threads or config.train.threads
            last = {"epoch": 0}

            def report(result, offset=index * config.train.epochs, before=spent, last=last) -> None:
                row = result.history[-1]
                last["epoch"] = row["epoch"]
                trial.set_user_attr(EPOCHS_RUN, before + row["epoch"])  # what a pruned trial spent
                if not single:
                    return  # Optuna prunes single-objective studies only
                # The seeds' epochs follow each other as steps, the same steps in every trial.
                trial.report(row[history_key], offset + row["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned()

            per_seed.append(validation_scores(config, report))
            spent += last["epoch"]
        scores = _mean_scores(per_seed)
        # Infeasible where any seed predicted one class for every validation image.
        trial.set_constraint(ONE_CLASS, float(min(s["val.predicted_classes"] for s in per_seed) == 1))
        trial.set_user_attr("scores", {k: (None if v != v else v) for k, v in scores.items()})
        trial.set_user_attr("seed_scores", [s[tune.objectives[0]] for s in per_seed])
        return tuple(scores[q] for q in tune.objectives) if not single else scores[tune.objectives[0]]

    # Until the study's finished trials have spent the budget, whichever process finished them: a
    # trial that fails (a NaN loss, a width that cannot be built) or was left running by a killed
    # process (its heartbeat stops) is replaced; at most 3x the budget's trials are tried.
    while _committed(study, None, full, live=False) < budget and _failures(study) < 2 * trials:
        optuna.storages.fail_stale_trials(study)
        _fail_unstarted(study)
        if _committed(study, None, full) >= budget:
            time.sleep(POLL_SECONDS)  # the rest of the budget is reserved by live trials: wait to see them end
            continue
        study.optimize(objective, n_trials=1, catch=(RunFailed, UsageError, Surplus))
    states = [t.state.name for t in study.trials]
    return {"study": name, "finished": len(_finished(study)), "pruned": states.count("PRUNED"), "failed": _failures(study),
            "epochs": _committed(study, None, full, live=False), "budget_epochs": budget}


def _mean_scores(per_seed: list[dict]) -> dict:
    """Each quantity's mean over the seeds' scores (NaN where a seed's is undefined)."""
    return {key: sum(scores[key] for scores in per_seed) / len(per_seed) for key in per_seed[0]}


class Surplus(Exception):
    """A trial reserved after the budget was full: it fails without training."""


def _committed(study, number: Optional[int], full: int, *, live: bool = True) -> int:
    """Epochs spent by the finished trials numbered below ``number`` (all, for None), plus, where
    ``live``, a full-length trial's epochs reserved by each running or waiting one. A finished trial
    recorded before epochs were counted spent a full-length trial."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    if live:
        states += (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    return sum(t.user_attrs.get(EPOCHS_RUN, full) if t.state.is_finished() else full
               for t in study.get_trials(deepcopy=False, states=states) if number is None or t.number < number)


def _fail_unstarted(study) -> None:
    """Fail the running trials that never reached the objective (no "started" mark) and began
    more than the grace period ago: their process died before their first heartbeat."""
    import optuna

    now = datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if "started" not in trial.user_attrs and (now - trial.datetime_start).total_seconds() > GRACE_SECONDS:
            try:
                study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another process failed it first


def _failures(study) -> int:
    """Trials that failed while training (a surplus trial never trained)."""
    import optuna

    return sum(1 for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
               if not t.user_attrs.get("surplus"))


def best_values(tune: TuneFile, study, variant: dict) -> tuple[dict, list[dict], bool]:
    """(the chosen trial's config values, the Pareto front as ``[{"values", "params"}]``, whether every
    finished trial predicted one class on validation): the best feasible trial of a single-objective
    study; in a multi-objective one, the front's member best in the first objective. With no feasible
    trial, the best in the first objective of them all, flagged."""
    import optuna

    space = tune.model_space(variant["model.name"])
    first_better = (lambda t: t.values[0]) if lower_is_better(tune.objectives[0]) else (lambda t: -t.values[0])
    front = study.best_trials  # feasible trials only: Optuna honours the constraint
    one_class_everywhere = not front
    if one_class_everywhere:
        front = [min(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)), key=first_better)]
    chosen = min(front, key=first_better)
    values = {key: from_trial_params(key, space[key], chosen.params[key]) for key in space}
    return values, [{"values": t.values, "params": t.params} for t in front], one_class_everywhere


def _plot_history(study, objectives: list[str], path: Path) -> None:
    """Optuna's optimisation history (one objective) or Pareto front (several) of ``study`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # Optuna's matplotlib plots are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if len(objectives) == 1:
            axes = optuna_plots.plot_optimization_history(study, target_name=objectives[0])
        else:
            axes = optuna_plots.plot_pareto_front(study, target_names=objectives[:3])
    axes.figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(axes.figure)


def run_tune(tune: TuneFile, *, trials: Optional[int], storage: Optional[str], out: Optional[str], workers: int,
             threads: Optional[int], rerun: bool, progress: bool, echo: Callable[[str], None] = print) -> dict:
    """Tune every (dataset, model) of ``tune`` to the same number of finished trials, write the
    summary and the best configurations as a sweep, and (``rerun``) run that sweep; returns the summary."""
    import optuna

    trials = tune.trials if trials is None else trials
    if trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    root = Path(out or tune.base.get("out") or "results")
    folder = root / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(folder / f'{tune.name}.db').resolve()}"
    opened = open_storage(url)  # refused in one line before any worker starts; creates the schema once
    jobs = [(str(tune.path), dataset, index, trials, url, threads)
            for dataset in tune.datasets for index in range(len(tune.variants))]
    existing = set(optuna.get_all_study_names(opened))
    for _, dataset, index, *_ in jobs:
        name = study_name(tune, dataset, tune.variants[index])
        if name not in existing:
            continue
        study = optuna.load_study(study_name=name, storage=opened)
        full = tune.trial_epochs(dataset, tune.variants[index])
        scored_on = study.user_attrs.get(TRIAL_SEEDS, tune.seeds[:1] if study.trials else tune.trial_seeds)
        if scored_on != tune.trial_seeds:
            raise UsageError(f"study {name} scored its trials on seeds {scored_on}, the tune file asks for "
                             f"trial_seeds {tune.trial_seeds}: set trial_seeds: {scored_on} or use another --storage")
        spent = _committed(study, None, full, live=False)
        if spent > trials * full:
            raise UsageError(f"--trials {trials} is fewer than the {-(-spent // full)} full-length trials' epochs ({spent}) "
                             f"study {name} has spent; ask for {-(-spent // full)} or more (a study is never cut back)")
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            outcomes = list(pool.map(tune_study, *zip(*jobs)))
    else:
        outcomes = [tune_study(*job) for job in jobs]
    summary = {"tune": str(tune.path), "trials": trials, "objectives": tune.objectives, "storage": url, "studies": []}
    variants, one_class_studies = [], []
    for (_, dataset, index, *_), outcome in zip(jobs, outcomes):
        variant = tune.variants[index]
        study = optuna.load_study(study_name=outcome["study"], storage=opened)
        values, front, one_class_everywhere = best_values(tune, study, variant)
        _plot_history(study, tune.objectives, folder / tune.name / f"{outcome['study'].split('/', 1)[1].replace('/', '-')}.png")
        chosen = (min if lower_is_better(tune.objectives[0]) else max)(entry["values"][0] for entry in front)
        summary["studies"].append({**outcome, "dataset": dataset, "model": variant["model.name"], "best": values,
                                   "best_value": chosen, "front": front, "one_class_everywhere": one_class_everywhere})
        if one_class_everywhere:
            one_class_studies.append(outcome["study"].split("/", 1)[1])
        variants.append({"dataset.name": dataset, **variant, **{k: list(v) if isinstance(v, tuple) else v
                                                                for k, v in values.items()}})
        echo(f"tuned  {outcome['study']}: {outcome['finished']} trials ({outcome['pruned']} pruned, "
             f"{outcome['failed']} failed), {outcome['epochs']} of {outcome['budget_epochs']} epochs; "
             f"best {json.dumps(values, default=str)}"
             + ("; every trial predicted one class on validation" if one_class_everywhere else ""))
    (folder / f"{tune.name}.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    best = folder / f"{tune.name}.best.yaml"
    caveat = (f" Every trial predicted one class on validation for {', '.join(one_class_studies)}: the best of those is "
              "kept, and its rows are flagged." if one_class_studies else "")
    best.write_text(yaml.safe_dump({
        "title": f"{tune.title}: tuned ({trials} trials per paradigm)",
        "label": f"tuned ({trials} trials)",
        "description": f"The best configuration of each paradigm after {trials} Optuna trials on the validation split "
                       f"({', '.join(tune.objectives)}; a trial predicting one class on validation is never chosen), "
                       f"re-run with seeds {tune.seeds}; written by neurocomp tune {tune.path}.{caveat}",
        "base": {**copy.deepcopy(tune.base), "out": str(root)},
        "variants": variants,
        "grid": {"train.seed": tune.seeds},
    }, sort_keys=False))
    echo(f"tune: best configurations in {best}; summary in {folder / (tune.name + '.json')}")
    if rerun:
        from .sweep import expand, load_sweep, run_sweep

        summary["rerun"] = run_sweep(expand(load_sweep(best)), workers=workers, threads=threads, progress=progress,
                                     echo=echo)
        _selection_optimism(tune, summary, variants, root, echo)
        (folder / f"{tune.name}.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def _selection_optimism(tune: TuneFile, summary: dict, chosen: list[dict], root: Path, echo: Callable[[str], None]) -> None:
    """Each study's best trial score against its configuration (``chosen``, the best sweep's variant of
    each study, in the same order) re-run on the seeds no trial trained on (the selection's
    optimism: how much picking the best of many noisy scores flattered it); added to the study's
    summary as ``optimism``."""
    from .identity import run_id
    from .record import load_runs

    fresh = [seed for seed in tune.seeds if seed not in tune.trial_seeds]
    records = {run.run_id: run for run in load_runs(root)}
    objective = tune.objectives[0]
    for study, variant in zip(summary["studies"], chosen):
        values = [records[name].value(objective) for name in
                  (run_id(resolve(tune.config(study["dataset"], variant, {"train.seed": seed})).to_dict())
                   for seed in fresh) if name in records]
        values = [value for value in values if value is not None]
        if not values:
            study["optimism"] = None
            continue
        fresh_mean = sum(values) / len(values)
        study["optimism"] = {"best_trial": study["best_value"], "fresh_seeds": fresh, "fresh": fresh_mean,
                             "optimism": study["best_value"] - fresh_mean}
        echo(f"optimism {study['study']}: best trial {objective} {study['best_value']:.4f} (mean of seeds "
             f"{tune.trial_seeds}), re-run on fresh seeds {fresh}: {fresh_mean:.4f} ({study['best_value'] - fresh_mean:+.4f})")
