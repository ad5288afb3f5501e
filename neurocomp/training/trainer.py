"""One training loop for every model: fit on train, select and stop on validation, test once.

Batches are slices of the in-memory split by index (no DataLoader, no per-sample Python). Every
metric is computed from all predictions of a split at once. The best weights by the monitored
validation quantity are restored before the test split is seen, and the test split is evaluated
only by :func:`evaluate`, which the run calls once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler
from tqdm import tqdm

from .allocator import retain_freed_memory
from ..core.config import TrainConfig
from ..data.datasets import Split
from ..data.encoders import Encoder
from ..core.errors import RunFailed
from ..core.devices import autocast
from .losses import LossFn, probabilities
from ..core.quantities import METRIC_NAMES, lower_is_better
from ..data.augment import augmenter
from .metrics import classification_metrics


def _batches(split: Split, batch_size: int, order: torch.Tensor):
    """Yield (images in [0, 1] float, labels) for consecutive index slices of ``order`` (images held
    on the device, or read from disk and moved there: neurocomp.data.storage)."""
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield split.images[index].float().div_(255.0), split.labels[index]


@dataclass
class Evaluation:
    """Passes over a split: the mean loss and metrics over the encoder's draws, each draw's
    probabilities ``(D, N, K)``, the labels ``(N,)`` (multi-label: ``(N, K)``) and the metrics' spread
    between draws."""

    loss: float
    probabilities: np.ndarray  # (D, N, K): one (N, K) per draw of a stochastic encoder, D = 1 otherwise
    labels: np.ndarray
    metrics: dict  # METRIC_NAMES: means over the draws; confusion_matrix, predicted_classes: of draw 0
    draw_std: dict  # METRIC_NAMES: sample std over the draws (NaN for one draw)


def evaluate(
    model: torch.nn.Module,
    encoder: Encoder,
    split: Split,
    *,
    loss: LossFn,
    positive: Optional[int],
    batch_size: int,
    seed: int,
    draws: int = 1,
    precision: str = "fp32",
) -> Evaluation:
    """Predict a whole split with the model in eval mode, ``draws`` times for a stochastic encoder
    (rate coding: each draw new spike trains, all from ``seed``), and score each draw. ``loss`` is the
    training objective (class-weighted where training is), so validation monitors what training minimises.

    One draw of spike trains moves an SNN's test accuracy by about as much as its seed does; the
    mean over draws is the score, their spread says how much one draw would have moved it.
    Re-seeding on every call gives every evaluation the same spike trains, so validation scores of
    different epochs differ only through the weights.
    """
    device = split.images.device
    generator = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    labels = split.labels.cpu().numpy()
    passes, losses = [], []
    with torch.no_grad():
        for _ in range(draws if encoder.stochastic else 1):
            total, outputs = 0.0, []
            for images, batch_labels in _batches(split, batch_size, torch.arange(len(split), device=device)):
                with autocast(device, precision):
                    batch_loss, logits = loss(model, encoder(images, generator), batch_labels)
                total += batch_loss.item() * len(batch_labels)
                outputs.append(probabilities(logits, multi_label=split.labels.ndim == 2).float().cpu())
            passes.append(torch.cat(outputs).numpy())
            losses.append(total / len(split))
    scored = [classification_metrics(labels, probs, positive) for probs in passes]
    metrics = {**scored[0], **{name: float(np.mean([m[name] for m in scored])) for name in METRIC_NAMES}}
    spread = {name: float(np.std([m[name] for m in scored], ddof=1)) if len(scored) > 1 else math.nan
              for name in METRIC_NAMES}
    return Evaluation(float(np.mean(losses)), np.stack(passes), labels, metrics, spread)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float = math.nan
    stopped_early: bool = False


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer of ``config`` over the trainable parameters of ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    # foreach: one multi-tensor update instead of ~10 ops per parameter tensor; torch only defaults
    # to it on CUDA, yet on CPU it halves the optimizer's share of a small model's step.
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               foreach=True)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True)


def _balanced_draw_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-image draw weights ``(N,)`` of labels ``(N,)``: 1 / N_class, so each class is drawn equally often."""
    labels = labels.cpu()
    return 1.0 / torch.bincount(labels).double()[labels]


def _epoch_order(size: int, draw_weights: Optional[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """One epoch's image indices ``(size,)``: a permutation, or ``size`` weighted draws with replacement."""
    if draw_weights is None:
        return torch.randperm(size, generator=generator)
    return torch.tensor(list(WeightedRandomSampler(draw_weights, size, replacement=True, generator=generator)))


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "multistep":
        milestones = [round(config.epochs * 0.5), round(config.epochs * 0.75)]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=config.gamma)
    return None


def _improved(value: float, best: float, minimize: bool, margin: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``margin`` (any finite value beats no best)."""
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best - margin if minimize else value > best + margin


def _patience_step(value: float, best: float, minimize: bool, config: TrainConfig) -> tuple[bool, Optional[int]]:
    """(whether ``value`` is the new best, the patience counter's change: +1, None to reset, 0 to keep).

    ``no_improvement`` (Keras' rule): the best must improve by more than ``min_delta``; any other
    epoch counts. ``worse_than_best`` (the LTC study's rule): any improvement is the new best, and
    only an epoch worse than the best by more than ``min_delta`` counts; one within it is neutral.
    """
    if config.stopping == "no_improvement":
        better = _improved(value, best, minimize, config.min_delta)
        return better, None if better else 1
    better = _improved(value, best, minimize, 0.0)
    worse = math.isnan(value) or _improved(best, value, minimize, config.min_delta)
    return better, None if better else (1 if worse else 0)


def fit(
    model: torch.nn.Module,
    encoder: Encoder,
    train: Split,
    val: Split,
    config: TrainConfig,
    *,
    loss: LossFn,
    positive: Optional[int],
    progress: bool = True,
    on_epoch: Optional[Callable[[FitResult], None]] = None,
) -> FitResult:
    """Train ``model`` on ``train`` minimising ``loss``, select on ``val``; the best weights are loaded
    when it returns. Each epoch visits the training images in a fresh random order
    (``train.sampler: shuffle``) or draws as many with replacement, every class equally likely
    (``balanced``).

    ``on_epoch`` sees the result after every epoch (the run writes history.csv from it). A non-finite
    loss raises RunFailed with the result so far attached as ``error.result``.
    """
    monitor = config.monitor.removeprefix("val.")  # checked when the config was resolved
    minimize = lower_is_better(monitor)
    optimizer = build_optimizer(config, model)
    scheduler = _scheduler(config, optimizer)
    device = train.images.device
    if device.type == "cpu":
        retain_freed_memory()
    shuffle = torch.Generator().manual_seed(config.seed)
    encoding = torch.Generator(device=device).manual_seed(config.seed)
    draw_weights = _balanced_draw_weights(train.labels) if config.sampler == "balanced" else None
    augment = augmenter(config.augment, tuple(train.images.shape[1:]))
    result = FitResult()
    best_state = None
    epochs_without_improvement = 0
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        total_loss = 0.0
        order = _epoch_order(len(train), draw_weights, shuffle).to(device)
        bar = tqdm(total=batches_per_epoch, desc=f"epoch {epoch}/{config.epochs}", disable=not progress, leave=True)
        for batch, (images, labels) in enumerate(_batches(train, config.batch_size, order), start=1):
            if augment is not None:
                images = augment(images)
            with autocast(device, config.precision):
                batch_loss, _ = loss(model, encoder(images, encoding), labels)
            if not torch.isfinite(batch_loss):
                bar.close()
                error = RunFailed(
                    f"the training loss became {batch_loss.item()} at epoch {epoch}, batch {batch}; "
                    "try a lower train.lr or check the inputs"
                )
                error.result = result
                raise error
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            if config.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            optimizer.step()
            total_loss += batch_loss.item() * len(labels)
            bar.set_postfix(loss=f"{total_loss / min(batch * config.batch_size, len(train)):.4f}", refresh=False)
            bar.update()
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        validation = evaluate(
            model, encoder, val, loss=loss, positive=positive, batch_size=config.batch_size, seed=config.seed + 1,
            precision=config.precision,
        )
        value = validation.loss if monitor == "loss" else validation.metrics[monitor]
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": total_loss / len(train),
            "val_loss": validation.loss,
            **{f"val_{name}": validation.metrics[name] for name in METRIC_NAMES},
            "seconds": time.perf_counter() - started,
        }
        result.history.append(row)
        bar.set_postfix(
            loss=f"{row['train_loss']:.4f}", val_loss=f"{validation.loss:.4f}",
            val_acc=f"{validation.metrics['accuracy']:.3f}", val_auc=f"{validation.metrics['auc']:.3f}",
        )
        bar.close()
        better, count = _patience_step(value, result.best_value, minimize, config)
        if better:
            result.best_value, result.best_epoch = value, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        epochs_without_improvement = 0 if count is None else epochs_without_improvement + count
        if on_epoch is not None:
            on_epoch(result)
        if config.patience is not None and epochs_without_improvement >= config.patience:
            result.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result
