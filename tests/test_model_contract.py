"""One contract test over the whole model registry (scikit-learn's parametrize_with_checks idea).

Every registered model, built-in or plug-in, with every encoder it accepts on a 2D and a 3D sample:
output shape, no NaN, gradients reach every trainable parameter, a sample's output does not depend on
the other samples in its batch, and the model has parameters. Then every ability the model declares
(neurocomp.core.abilities) does what it promises, a model whose output depends on the order of its
steps (state carried from step to step) declares where that state is, so the energy estimate counts
its memory accesses, and its registration names a paradigm family.
"""

import json

import pytest
import torch

import neurocomp  # noqa: F401  (registers the built-ins)
from neurocomp import kernels
from neurocomp.core.abilities import CountsOwnCost, DescribesItself, EmitsSpikes, HoldsNeuronState
from neurocomp.training.cost import inference_cost
from neurocomp.core.errors import UsageError
from neurocomp.models import build_model
from neurocomp.core.registry import ENCODERS, MODELS

SAMPLES = {"2d": (1, 28, 28), "3d": (1, 16, 16, 16)}
ENCODER_OPTIONS = {"rate": {"steps": 4}, "repeat": {"steps": 3}, "patches": {"size": 7}}
NUM_OUTPUTS = 3
BATCH = 4


def build_pair(model_name, encoder_name, sample):
    encoder = ENCODERS.get(encoder_name).builder(sample_shape=SAMPLES[sample], **ENCODER_OPTIONS.get(encoder_name, {}))
    model = build_model(model_name, encoder=encoder, num_outputs=NUM_OUTPUTS)
    return encoder, model


def accepted_pairs(model_name):
    pairs = []
    for sample in SAMPLES:
        for encoder_name in ENCODERS.names():
            try:
                build_pair(model_name, encoder_name, sample)
            except UsageError:
                continue  # a refused pairing is part of the contract: it must be a UsageError
            pairs.append((encoder_name, sample))
    return pairs


CASES = [(m, e, s) for m in MODELS.names() for e, s in accepted_pairs(m)]


@pytest.mark.parametrize("model_name", MODELS.names())
def test_every_model_accepts_some_encoder(model_name):
    assert accepted_pairs(model_name), f"model {model_name!r} refuses every encoder"


def encoded_batch(encoder, sample, seed):
    generator = torch.Generator().manual_seed(seed)
    return encoder(torch.rand((BATCH, *SAMPLES[sample]), generator=generator), generator)


@pytest.mark.parametrize("model_name,encoder_name,sample", CASES, ids=[f"{m}-{e}-{s}" for m, e, s in CASES])
def test_model_contract(model_name, encoder_name, sample):
    torch.manual_seed(0)
    encoder, model = build_pair(model_name, encoder_name, sample)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) > 0

    x = encoded_batch(encoder, sample, seed=1)
    assert x.shape == (encoder.steps, BATCH, *encoder.step_shape)
    model.train()
    logits = model(x)
    assert logits.shape == (BATCH, NUM_OUTPUTS)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.arange(BATCH) % NUM_OUTPUTS).backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            # None means the parameter is cut off from the output. An all-zero gradient can be
            # honest (a spiking layer that stayed silent for this input), so it is not required.
            assert parameter.grad is not None, f"no gradient reaches {name}"
            assert torch.isfinite(parameter.grad).all(), f"non-finite gradient in {name}"
    assert sum(p.grad.abs().sum() for p in trainable) > 0

    # Batch independence: changing samples 1.. must not change sample 0 (catches time/batch mix-ups).
    model.eval()
    with torch.no_grad():
        other = encoded_batch(encoder, sample, seed=2)
        changed = torch.cat([x[:, :1], other[:, 1:]], dim=1)
        assert torch.allclose(model(x)[0], model(changed)[0], atol=1e-5)


@pytest.mark.parametrize("model_name", MODELS.names())
def test_registration_names_a_family(model_name):
    family = MODELS.get(model_name).meta.family
    assert isinstance(family, str) and family


@pytest.mark.parametrize("model_name,encoder_name,sample", CASES, ids=[f"{m}-{e}-{s}" for m, e, s in CASES])
def test_declared_abilities(model_name, encoder_name, sample):
    torch.manual_seed(0)
    encoder, model = build_pair(model_name, encoder_name, sample)
    x = encoded_batch(encoder, sample, seed=1)
    model.eval()
    if isinstance(model, EmitsSpikes):
        logits, spikes = model.forward_with_spikes(x)
        assert torch.allclose(logits, model(x))
        assert spikes.shape == (encoder.steps, BATCH, NUM_OUTPUTS)
        assert set(spikes.unique().tolist()) <= {0.0, 1.0}
        rates = model.spike_rates(x)
        assert rates and all(0.0 <= rate <= 1.0 for rate in rates)
    if isinstance(model, DescribesItself):
        described = model.describe()
        json.dumps(described)  # it goes into run.json as it is
        for entry in described.get("kernels", []):
            assert set(entry) == {"where", "path", "reason"} and (entry["path"] == "library") == bool(entry["reason"])
        with kernels.backend("library"):
            assert all(e["path"] == "library" for e in model.describe().get("kernels", []))
    seen = []
    hooks = [module.register_forward_hook(lambda module, args, _: seen.append((module, args[0])))
             for module in model.modules() if isinstance(module, CountsOwnCost)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    for module, inputs in seen:
        counted = module.own_cost(inputs)
        assert isinstance(counted["layer"], str) and counted["dense_macs"] >= counted["macs"] > 0
    cost = inference_cost(model, x)
    assert cost["dense_macs"] >= cost["macs"] >= 0 and cost["acs"] >= 0
    assert len(cost["layers"]) >= len(seen)


def undeclared_state(model: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether ``model`` carries state from step to step (its logits change when the steps of ``x``
    ``(T, B, ...)`` are reversed) while no module of it says where: a :class:`HoldsNeuronState`
    layer, a torch recurrent layer, or a module that :class:`CountsOwnCost` (an ncps cell)."""
    if x.shape[0] < 2:
        return False
    with torch.no_grad():
        order_matters = not torch.allclose(model(x), model(x.flip(0)), atol=1e-5)
    declared = any(isinstance(module, (HoldsNeuronState, CountsOwnCost, torch.nn.RNNBase)) for module in model.modules())
    return order_matters and not declared


@pytest.mark.parametrize("model_name,encoder_name,sample", CASES, ids=[f"{m}-{e}-{s}" for m, e, s in CASES])
def test_state_carried_across_steps_is_declared(model_name, encoder_name, sample):
    torch.manual_seed(0)
    encoder, model = build_pair(model_name, encoder_name, sample)
    assert not undeclared_state(model.eval(), encoded_batch(encoder, sample, seed=1)), (
        f"{model_name} carries state from step to step but no layer declares HoldsNeuronState: "
        "the energy estimate would leave its state's memory accesses out")


def test_the_state_check_catches_a_leaky_layer_that_does_not_declare_itself():
    class Leaky(torch.nn.Module):
        def forward(self, x):
            state = torch.zeros_like(x[0])
            for step in x:
                state = 0.5 * state + step
            return state.flatten(1)[:, :NUM_OUTPUTS]

    class Declared(Leaky, HoldsNeuronState):
        state_accesses = 2

    x = torch.rand(5, BATCH, 8)
    assert undeclared_state(Leaky(), x) and not undeclared_state(Declared(), x)
    assert not undeclared_state(torch.nn.Sequential(torch.nn.Flatten(0, 1)), x[:1])  # one step: nothing to carry
