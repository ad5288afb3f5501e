"""The one place an encoder and a model are built from a config: a run, a reloaded run and the
bench all go through :func:`build`."""

from __future__ import annotations

import os
from typing import Callable, Optional

import torch

from ..core.config import RunConfig
from ..data.augment import augmenter
from ..data.encoders import Encoder
from ..core.errors import UsageError
from .losses import check_loss_fits, num_outputs
from .metrics import parameter_counts
from ..models import build_model
from ..core.registry import ENCODERS, MODELS
from ..core.sizing import fit_width, scaled


def build(config: RunConfig, sample_shape: tuple[int, ...], num_classes: int,
          multi_label: bool = False) -> tuple[Encoder, torch.nn.Module]:
    """The encoder and model ``config`` names, for samples of ``sample_shape`` (``(C, H, W)`` or
    ``(C, D, H, W)``) and ``num_classes`` classes (labels, when ``multi_label``); UsageError where
    they cannot fit.

    With a parameter budget (``config.params``) the model's width option is first chosen to meet it
    and written into ``config.model.options``, so the record holds the width that ran.
    """
    augmenter(config.train.augment, tuple(sample_shape))  # a policy that does not fit the samples stops here
    encoder = ENCODERS.get(config.encoder.name).builder(sample_shape=tuple(sample_shape), **config.encoder.options)
    outputs = num_outputs(config.train.loss, num_classes, multi_label)

    def make(options: dict) -> torch.nn.Module:
        return build_model(config.model.name, encoder=encoder, num_outputs=outputs, **options)

    if config.params is not None:
        _check_fits_in_memory(config.params)
        option = _width_option(config)
        config.model.options[option] = _fit_width(config, option, make)
    model = make(config.model.options)
    check_loss_fits(config.train.loss, model)
    if config.train.scheme == "linear_probe":
        _freeze_all_but_the_head(config, model)
    return encoder, model


def _freeze_all_but_the_head(config: RunConfig, model: torch.nn.Module) -> None:
    """Linear probing: every parameter but the head's stops training; UsageError where there is no
    pretrained model to probe."""
    if config.model.options.get("weights", "none") == "none" or not hasattr(model, "head"):
        raise UsageError(f"train.scheme=linear_probe trains only the head of a pretrained model, and {config.model.name} "
                         "has no pretrained weights here: set model.weights (imagenet or a file) on resnet18 or resnet50")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("head."))


def _check_fits_in_memory(params: int) -> None:
    """UsageError for a budget whose training state cannot fit in this machine's memory: weights,
    their gradients and Adam's two moments, 4 bytes each, may take at most half of it (activations,
    the data and the width search's trial models come on top)."""
    needed = 16 * params
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > memory / 2:
        raise UsageError(f"--params {params:,}: training needs at least {needed / 2**30:.1f} GiB for weights, gradients "
                         f"and Adam's moments, more than half of this machine's {memory / 2**30:.1f} GiB")


def _width_option(config: RunConfig) -> str:
    option = MODELS.get(config.model.name).meta.width
    if option is None or option not in config.model.options:
        raise UsageError(f"--params: model {config.model.name!r} does not name a width option to scale")
    if config.model.options[option] == ():
        raise UsageError(f"--params: model.{option} is empty, so there is no width to scale")
    return option


def _fit_width(config: RunConfig, option: str, make: Callable[[dict], torch.nn.Module]) -> int | tuple[int, ...]:
    base = config.model.options[option]
    floor = MODELS.get(config.model.name).meta.floor if config.sizing == "floors" else 1
    counts: dict[int, Optional[int]] = {}

    def count_at(width: int) -> Optional[int]:
        if width not in counts:
            try:
                counts[width] = parameter_counts(make({**config.model.options, option: scaled(base, width, floor)}))["trainable"]
            except UsageError:
                counts[width] = None
        return counts[width]

    width, _ = fit_width(count_at, config.params, option, tolerance=config.params_tolerance, floor=floor)
    return scaled(base, width, floor)
