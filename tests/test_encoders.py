import pytest
import torch

from neurocomp import kernels
from neurocomp.data.encoders import channels, columns, patches, rate, repeat, rows, slices, static
from neurocomp.core.errors import UsageError


def arange_images(batch=2, channels=1, height=3, width=4):
    total = batch * channels * height * width
    return torch.arange(total, dtype=torch.float32).reshape(batch, channels, height, width) / total


def test_rows_are_image_rows_in_order():
    x = arange_images()
    encoder = rows(sample_shape=(1, 3, 4))
    out = encoder(x)
    assert encoder.steps == 3 and encoder.step_shape == (4,)
    assert out.shape == (3, 2, 4)
    for t in range(3):
        assert torch.equal(out[t, 1], x[1, 0, t])


def test_columns_are_image_columns_in_order():
    x = arange_images()
    out = columns(sample_shape=(1, 3, 4))(x)
    assert out.shape == (4, 2, 3)
    assert torch.equal(out[2, 0], x[0, 0, :, 2])


def test_rows_of_rgb_concatenate_channels():
    x = arange_images(channels=3)
    out = rows(sample_shape=(3, 3, 4))(x)
    assert out.shape == (3, 2, 12)
    assert torch.equal(out[1, 0], torch.cat([x[0, c, 1] for c in range(3)]))


def test_rate_of_zero_never_spikes_and_of_one_always_spikes():
    encoder = rate(sample_shape=(1, 3, 4), steps=7)
    assert torch.equal(encoder(torch.zeros(2, 1, 3, 4)), torch.zeros(7, 2, 1, 3, 4))
    assert torch.equal(encoder(torch.ones(2, 1, 3, 4)), torch.ones(7, 2, 1, 3, 4))


def test_rate_is_seeded_and_binary_with_the_right_mean():
    encoder = rate(sample_shape=(1, 28, 28), steps=50)
    x = torch.full((4, 1, 28, 28), 0.3)
    a = encoder(x, torch.Generator().manual_seed(3))
    b = encoder(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert abs(a.mean().item() - 0.3) < 0.01


@pytest.fixture(params=["native", "library"])
def rate_path(request):
    """Runs a test on the native rate kernel, then on the pure-torch path."""
    if request.param == "library":
        with kernels.backend("library"):
            yield request.param
    else:
        if kernels.build.load(kernels.rate.KERNEL) is None:
            pytest.skip("native kernels unavailable here")
        yield request.param


@pytest.mark.parametrize("shape, steps", [((16, 1, 28, 28), 20), ((3, 2, 5, 7), 3), ((1, 1, 1, 1), 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rate_spikes_are_those_of_float_uniforms(rate_path, shape, steps, dtype):
    # Integer draws u < ceil(p * 2^24) are exactly torch.rand(...) < p; on the CPU torch takes both
    # from the same 32-bit stream (and so does the native kernel), so a seed gives the very same
    # spikes as a float draw, and leaves the generator where the float draw leaves it.
    encoder = rate(sample_shape=shape[1:], steps=steps)
    x = (torch.randint(0, 256, shape) / 255).to(dtype)  # float32 values: compared exactly below
    ours, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    torch.rand(13, generator=ours), torch.rand(13, generator=theirs)  # start mid-way through a block
    for _ in range(3):  # 20 x 16 x 784 draws span many 624-word blocks
        spikes = encoder(x, ours)
        assert spikes.dtype == dtype
        assert torch.equal(spikes, (torch.rand((steps, *shape), generator=theirs) < x.float()).to(dtype))
    assert torch.equal(ours.get_state(), theirs.get_state())


def test_rate_without_a_generator_draws_from_the_global_one(rate_path):
    encoder = rate(sample_shape=(1, 5, 5), steps=4)
    x = torch.rand(3, 1, 5, 5)
    torch.manual_seed(11)
    spikes, after = encoder(x), torch.rand(5)
    torch.manual_seed(11)
    assert torch.equal(spikes, (torch.rand(4, 3, 1, 5, 5) < x).float())
    assert torch.equal(after, torch.rand(5))


def test_rate_gain_scales_probability():
    out = rate(sample_shape=(1, 28, 28), steps=50, gain=0.5)(torch.ones(4, 1, 28, 28), torch.Generator().manual_seed(0))
    assert abs(out.mean().item() - 0.5) < 0.01


def test_static_and_repeat_and_symmetric_scaling():
    x = arange_images()
    assert torch.equal(static(sample_shape=(1, 3, 4))(x), x.unsqueeze(0))
    out = repeat(sample_shape=(1, 3, 4), steps=3, symmetric=True)(x)
    assert out.shape == (3, 2, 1, 3, 4)
    assert torch.equal(out[2], x * 2 - 1)


def test_slices_turn_depth_into_time():
    volume = torch.rand(2, 1, 5, 6, 7)
    encoder = slices(sample_shape=(1, 5, 6, 7))
    out = encoder(volume)
    assert encoder.steps == 5 and encoder.step_shape == (1, 6, 7)
    assert torch.equal(out[3, 1], volume[1, :, 3])


def test_patches_in_raster_order():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    out = patches(sample_shape=(1, 4, 4), size=2)(x)
    assert out.shape == (4, 1, 4)
    assert out[:, 0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


@pytest.mark.parametrize("builder", [rows, columns, channels, patches])
def test_2d_encoders_refuse_volumes(builder):
    with pytest.raises(UsageError, match="needs 2D images"):
        builder(sample_shape=(1, 8, 8, 8))


def test_slices_refuses_2d_images():
    with pytest.raises(UsageError, match="needs 3D volumes"):
        slices(sample_shape=(1, 28, 28))


def test_patch_size_must_divide_the_image():
    with pytest.raises(UsageError, match="does not divide"):
        patches(sample_shape=(1, 28, 28), size=5)


def test_channels_are_steps():
    x = arange_images(channels=3)
    out = channels(sample_shape=(3, 3, 4))(x)
    assert out.shape == (3, 2, 12)
    assert torch.equal(out[2, 1], x[1, 2].reshape(-1))
