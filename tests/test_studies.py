"""The study configs build the published architectures: parameter counts match exactly."""

import pytest
import torch

from neurocomp.core.config import load_yaml, resolve
from neurocomp.training.metrics import parameter_counts
from neurocomp.training.assemble import build

SAMPLE_2D, SAMPLE_3D = (1, 28, 28), (1, 28, 28, 28)


def built(config_name, sample_shape, **options):
    config = resolve(load_yaml(f"configs/studies/{config_name}.yaml"))
    config.model.options.update(options)
    return build(config, sample_shape, 2)


@pytest.mark.parametrize(
    "config_name, sample_shape, trainable",
    [
        ("snn-pneumonia", SAMPLE_2D, 5_402),
        ("lnn-breast", SAMPLE_2D, 263_048),
        ("lnn-breast-dnn", SAMPLE_2D, 935_298),
        ("ltc-adrenal3d", SAMPLE_3D, 37_265),
        ("ltc-adrenal3d-lstm", SAMPLE_3D, 71_797),
        ("ltc-adrenal3d-cnn", SAMPLE_3D, 1_036 + 48_120 + 10_164 + 85),
    ],
)
def test_study_parameter_counts_match_the_publications(config_name, sample_shape, trainable):
    encoder, model = built(config_name, sample_shape)
    assert parameter_counts(model)["trainable"] == trainable
    logits = model(encoder(torch.rand(3, *sample_shape)))
    assert logits.shape[0] == 3 and torch.isfinite(logits).all()


def test_lnn_reads_the_flattened_map_as_32_steps_of_16():
    encoder, model = built("lnn-breast", SAMPLE_2D)
    model.eval()
    x = encoder(torch.rand(2, *SAMPLE_2D))
    sequence = model.features(x)
    maps = model.features.convs(x.reshape(2, *SAMPLE_2D))
    assert maps.shape == (2, 128, 2, 2) and sequence.shape == (32, 2, 16)
    # Channel-major, as ``x.view(-1, 32, 16)`` of the flattened (128, 2, 2) map: step 5 = features 80..95.
    assert torch.equal(sequence[5, 1], maps[1].flatten()[80:96])


def test_effective_synapses_of_the_ltc_study():
    _, model = built("ltc-adrenal3d", SAMPLE_3D)
    synapses = model.describe()["synapses"]
    assert synapses["wiring_sensory"] == 2400 and synapses["wiring_internal"] == 63
    assert synapses["effective"] == 2463  # LTC masks keep exactly the wiring's synapses
    assert synapses["dense"] == 400 * 21 + 21 * 21


def test_cfc_masks_are_counted_as_the_cell_uses_them():
    _, model = built("lnn-breast", SAMPLE_2D)
    assert model.describe()["synapses"]["dense"] == 415  # the 415 mask entries ncps stores


@pytest.mark.parametrize("sequence, steps, features", [("rows", 6, 192), ("channels", 32, 36), ("patches", 9, 128)])
def test_ncp_head_reads_the_feature_map_as_a_sequence(sequence, steps, features):
    encoder, model = built("ncp-head", SAMPLE_2D, sequence=sequence)
    assert model.features(encoder(torch.rand(2, *SAMPLE_2D))).shape == (steps, 2, features)
    _, control = built("ncp-head-fc", SAMPLE_2D)
    backbone = [p.shape for p in model.features.convs.parameters()]
    assert backbone == [p.shape for p in control.features.parameters()]  # same backbone, other head
