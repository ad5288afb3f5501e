"""Run configuration: dataclass defaults <- YAML file <- command-line flags and ``--set a.b=c``.

Strict like nanoGPT's configurator: an unknown key or a value of the wrong type is a UsageError
before any work starts. Encoder and model options are the keyword-only arguments (with defaults)
of the registered builder, so a new model's options are validated without touching this file.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .catalogue import check_dataset, layout
from .errors import UsageError
from .quantities import METRIC_NAMES
from .registry import ENCODERS, MODELS, Registry
from .sizing import TOLERANCE, parse_count


@dataclass
class DatasetConfig:
    name: str = "pneumonia"  # a registered dataset name or a path to a MedMNIST-layout .npz
    size: int = 28
    resize: Optional[int] = None  # resample every image/volume to this side after loading (e.g. 64 -> 28)
    data_dir: Optional[str] = None  # None: $NEUROCOMP_DATA_DIR, else ~/.medmnist
    positive: Optional[int] = None  # None: the dataset's clinical positive class
    download: bool = True
    verify: bool = True  # check the MD5 that MedMNIST publishes


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3  # unless the model declares its own (ModelInfo.lr) and train.lr is not set
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    clip_grad: Optional[float] = None  # clip the gradients' global L2 norm to this before each step; None: never
    # step: x gamma every step_size epochs; cosine: annealed to 0 over the epochs; multistep: x gamma at
    # half and at three quarters of the epochs (MedMNIST v2's recipe: epochs 50 and 75 of 100).
    schedule: Literal["none", "step", "cosine", "multistep"] = "none"
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.1  # step and multistep schedules: decay factor
    # auto: the set's task decides (bce, one sigmoid per label, for a multi-label set; cross_entropy
    # otherwise), resolved before anything runs, so a record always names the loss that trained.
    # bce on a binary task: one logit. rate: snnTorch's spike-count loss (spiking models).
    loss: Literal["auto", "cross_entropy", "bce", "rate"] = field(default="auto", metadata={"neutral": "cross_entropy"})
    monitor: str = "val.loss"  # model selection and early stopping quantity: val.<metric>
    patience: Optional[int] = None  # epochs without improvement before stopping; None: never stop early
    min_delta: float = 0.0
    # What counts towards patience: no_improvement (an epoch that does not beat the best by min_delta)
    # or worse_than_best (only an epoch worse than the best by more than min_delta: the LTC study's).
    stopping: Literal["no_improvement", "worse_than_best"] = "no_improvement"
    # Imbalance: balanced weighs each class's loss terms by N / (K * N_class) (scikit-learn's rule;
    # the default, so that no model learns "always the majority class" on an imbalanced set; 1 on a
    # balanced one); the balanced sampler draws each epoch's N images with replacement, every class
    # equally likely.
    # Added as none (unweighted, as every run before it): runs at none keep their ids.
    class_weight: Literal["none", "balanced"] = field(default="balanced", metadata={"neutral": "none"})
    sampler: Literal["shuffle", "balanced"] = "shuffle"
    # Train-time augmentation before any encoder (neurocomp.data.augment): none, flip, affine (2D), volume (3D).
    augment: Literal["none", "flip", "affine", "volume"] = "none"
    # linear_probe: only the head trains, on a model with pretrained weights (model.weights); the rest is frozen.
    scheme: Literal["end_to_end", "linear_probe"] = "end_to_end"
    # bf16: forward passes under CUDA autocast in bfloat16 (the LIF recurrence stays float32).
    precision: Literal["fp32", "bf16"] = "fp32"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Optional[int] = None


@dataclass
class EvalConfig:
    # Encodings of each validation/test image scored at the end of a run by a stochastic encoder
    # (rate coding): the metrics are their mean, and their spread is recorded. Ignored by
    # deterministic encoders. Model selection during training uses one fixed draw.
    draws: int = field(default=10, metadata={"neutral": 1})  # before draws existed, one draw was scored
    # Binary tasks: the rule that picks, on validation, the decision threshold whose test metrics are
    # recorded beside those at 0.5: youden, sensitivity@<level>, specificity@<level> or a number.
    threshold: Union[float, str] = "youden"


@dataclass
class ComponentConfig:
    """A registered component (encoder or model) by name, with its builder's options."""

    name: Optional[str] = None
    options: dict = field(default_factory=dict)


@dataclass
class ModelConfig(ComponentConfig):
    """The model by name with its builder's options, and which path computes it."""

    # auto: a native kernel wherever one computes exactly the module's maths; native: the same, but
    # refuse where none does; library: snnTorch / ncps / torch only. Where, not what: the run id
    # ignores it, the record says which path each layer took.
    backend: Literal["auto", "native", "library"] = "auto"


@dataclass
class RunConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    encoder: ComponentConfig = field(default_factory=ComponentConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig("cnn"))
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    params: Optional[int] = None  # trainable parameter budget: the model's width is chosen to meet it
    params_tolerance: float = TOLERANCE  # how far (a fraction of params) the closest width may land from it
    # How a budget sets the widths: floors (no scaled layer under the model's floor) or scaled (every
    # entry in proportion, as before floors existed: the MLP's second layer could fall to 1-6 units).
    sizing: Literal["floors", "scaled"] = field(default="floors", metadata={"neutral": "scaled"})
    out: str = "results"

    def to_dict(self) -> dict:
        """The nested form that YAML files use: options inline next to the name."""
        plain = dataclasses.asdict(self)
        for part in ("encoder", "model"):
            plain[part] = {**{k: v for k, v in plain[part].items() if k != "options"}, **plain[part]["options"]}
        return plain


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return " | ".join(repr(v) for v in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against ``annotation`` (int, float, bool, str, Literal, Optional,
    tuple[int, ...]); ints are accepted for floats and lists for tuples. UsageError otherwise."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except UsageError as error:
                errors.append(str(error))
        raise UsageError(errors[0] if len(errors) == 1 else f"{key}: {value!r} is not {_type_name(annotation)}")
    if origin is Literal:
        if value in args:
            return value
        raise UsageError(f"{key}: {value!r} is not one of {', '.join(repr(a) for a in args)}")
    if origin is tuple:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{key}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        return tuple(coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
        return float(value)  # PyYAML (YAML 1.1) reads 1e-3 as a string; it is a float to any reader
    if annotation in (int, float, str, bool):
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise UsageError(f"{key}: expected {annotation.__name__}, got {value!r}")
    raise TypeError(f"{key}: unsupported option annotation {annotation!r}")


def _strict_dataclass(cls: type, values: Any, section: str) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise UsageError(f"{section}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"unknown key {section}.{unknown[0]}; valid keys: {', '.join(known)}")
    return cls(**{k: coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def builder_options(builder: Any) -> dict[str, inspect.Parameter]:
    """The user-settable options of a builder: its keyword-only parameters with defaults."""
    return {
        p.name: p
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def resolve_options(registry: Registry, name: str, given: dict, section: str) -> dict:
    """Every option of ``name``'s builder: defaults, overridden by ``given`` (checked strictly)."""
    builder = registry.get(name).builder
    options = builder_options(builder)
    unknown = sorted(set(given) - set(options))
    if unknown:
        valid = ", ".join(options) or "none"
        raise UsageError(f"unknown key {section}.{unknown[0]} for {registry.kind} {name!r}; valid keys: {valid}")
    hints = typing.get_type_hints(builder)
    resolved = {}
    for key, param in options.items():
        value = given.get(key, param.default)
        resolved[key] = coerce(value, hints.get(key, Any), f"{section}.{key}")
    return resolved


def _component(values: Any, section: str, kind: type = ComponentConfig) -> ComponentConfig:
    if values is None:
        values = {}
    if isinstance(values, str):
        values = {"name": values}
    if not isinstance(values, dict):
        raise UsageError(f"{section}: expected a mapping, got {values!r}")
    values = dict(values)
    name = values.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise UsageError(f"{section}.name: expected str, got {name!r}")
    # The section's own keys besides the name (model.backend); the rest are the builder's options.
    own = {f.name for f in dataclasses.fields(kind)} - {"name", "options"}
    hints = typing.get_type_hints(kind)
    settings = {key: coerce(values.pop(key), hints[key], f"{section}.{key}") for key in own & set(values)}
    return kind(name, values, **settings)


def resolve(raw: dict) -> RunConfig:
    """A fully resolved, validated RunConfig from the nested dict form (YAML + overrides)."""
    known = [f.name for f in dataclasses.fields(RunConfig)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r}; valid top-level keys: {', '.join(known)}")
    model = _component(raw.get("model"), "model", ModelConfig)
    model.name = model.name or RunConfig().model.name
    model.options = resolve_options(MODELS, model.name, model.options, "model")
    dataset = _strict_dataclass(DatasetConfig, raw.get("dataset"), "dataset")
    check_dataset(dataset)
    shape = functools.cache(lambda: layout(dataset))  # a .npz is peeked at only when a default needs it
    encoder = _component(raw.get("encoder"), "encoder")
    # A model names the encoder it is usually fed with (snn: rate; on volumes, slices for every
    # built-in), so `--model snn` alone works on any set.
    declared = MODELS.get(model.name).meta
    encoder.name = encoder.name or (declared.volume_encoder if shape().volumetric else declared.default_encoder)
    encoder.options = resolve_options(ENCODERS, encoder.name, encoder.options, "encoder")
    train = _strict_dataclass(TrainConfig, raw.get("train"), "train")
    declared_lr = MODELS.get(model.name).meta.lr
    if declared_lr is not None and "lr" not in (raw.get("train") or {}):
        train.lr = declared_lr  # a model that learns at another rate says so in its registration
    _check_train(train)
    if train.loss == "auto":
        train.loss = "bce" if shape().multi_label else "cross_entropy"
    evaluation = _strict_dataclass(EvalConfig, raw.get("eval"), "eval")
    _check_ranges("eval", evaluation)
    return RunConfig(
        dataset=dataset,
        eval=evaluation,
        encoder=encoder,
        model=model,
        train=train,
        params=None if raw.get("params") is None else parse_count(raw["params"]),
        params_tolerance=_tolerance(raw.get("params_tolerance", TOLERANCE)),
        sizing=coerce(raw.get("sizing", RunConfig.sizing), typing.get_type_hints(RunConfig)["sizing"], "sizing"),
        out=coerce(raw.get("out", RunConfig.out), str, "out"),
    )


def _tolerance(value: Any) -> float:
    tolerance = coerce(value, float, "params_tolerance")
    if not 0 <= tolerance < 1:
        raise UsageError(f"params_tolerance must be a fraction in [0, 1), e.g. 0.1 for 10%, got {value!r}")
    return tolerance


RULES = "youden, sensitivity@<level>, specificity@<level> (level in (0, 1)) or a number in [0, 1]"


def parse_rule(rule) -> tuple[str, float]:
    """``eval.threshold`` as (kind, level): ("youden", nan), ("sensitivity", 0.9), ("specificity", 0.9)
    or ("fixed", 0.3). ValueError when it is none of :data:`RULES`."""
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        if 0 <= rule <= 1:
            return "fixed", float(rule)
        raise ValueError(rule)
    if rule == "youden":
        return "youden", float("nan")
    kind, _, level = str(rule).partition("@")
    if kind in ("sensitivity", "specificity") and 0 < float(level or "nan") < 1:
        return kind, float(level)
    raise ValueError(rule)


# <section>.<key>: (rule, what it must be); every run and every sweep entry is checked before any work.
_RANGES = {
    "train": {
        "epochs": (lambda v: v >= 1, "at least 1"),
        "batch_size": (lambda v: v >= 1, "at least 1"),
        "lr": (lambda v: 0 < v < float("inf"), "positive"),
        "weight_decay": (lambda v: 0 <= v < float("inf"), "0 or more"),
        "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "clip_grad": (lambda v: v is None or 0 < v < float("inf"), "positive (or null: never clip)"),
        "step_size": (lambda v: v >= 1, "at least 1"),
        "gamma": (lambda v: 0 < v < float("inf"), "positive"),
        "patience": (lambda v: v is None or v >= 1, "at least 1 (or null: never stop early)"),
        "min_delta": (lambda v: 0 <= v < float("inf"), "0 or more"),
        "seed": (lambda v: 0 <= v < 2**32, "in [0, 2^32) (numpy's seed range)"),
        "threads": (lambda v: v is None or v >= 1, "at least 1 (or null: torch's choice)"),
    },
    "eval": {"draws": (lambda v: v >= 1, "at least 1"),
             "threshold": (lambda v: _parses(v), "one of: " + RULES)},
}


def _parses(rule) -> bool:
    try:
        parse_rule(rule)
    except ValueError:
        return False
    return True


def _check_ranges(section: str, values) -> None:
    for key, (valid, expected) in _RANGES[section].items():
        value = getattr(values, key)
        if not valid(value):
            raise UsageError(f"{section}.{key} must be {expected}, got {value!r}")


def _check_train(train: TrainConfig) -> None:
    _check_ranges("train", train)
    quantities = ["val.loss", *(f"val.{name}" for name in METRIC_NAMES)]
    if train.monitor not in quantities:
        raise UsageError(f"train.monitor: unknown quantity {train.monitor!r}; choose one of: {', '.join(quantities)}")


def load_yaml(path: str | Path) -> dict:
    """A config file as a nested dict (safe loader); UsageError when missing or malformed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"config file {path} is a folder, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"config file {path} is not readable text ({type(error).__name__})") from None
    except ValueError as error:  # a path no file can have (a NUL byte)
        raise UsageError(f"config file {str(path)!r} cannot be opened ({error})") from None
    except yaml.YAMLError as error:
        raise UsageError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping at the top level")
    return data


def set_dotted(raw: dict, dotted: str, value: Any) -> None:
    """``raw['a']['b'] = value`` for ``dotted == 'a.b'``, creating sections as needed."""
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if isinstance(child, str):  # `model: snn` shorthand
            child = node[part] = {"name": child}
        if not isinstance(child, dict):
            raise UsageError(f"--set {dotted}: {part!r} is not a section")
        node = child
    node[leaf] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``'model.beta=0.9'`` -> ``('model.beta', 0.9)``; the value is read as YAML (numbers, lists, true)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--set {text!r}: expected KEY=VALUE, e.g. train.epochs=5")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise UsageError(f"--set {text!r}: cannot read the value") from None
