"""The CUDA path end to end (marker ``cuda``; skipped without a GPU): every built-in model trains
and evaluates on the GPU through the command line, bf16 runs record themselves, the LIF kernel on
CUDA is Triton's, and the GPU bench runs. CI has no GPU: these run on a lent machine by
``benchmarks/gpu-check.sh``."""

import json

import pytest
import torch

from neurocomp.cli import main
from neurocomp.runs.record import load_runs

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MODELS = ["cnn", "mlp", "snn", "ltc", "cfc", "lstm", "gru", "rnn", "alif"]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_and_evaluates_on_cuda(npz_2d, tmp_path, model, capsys):
    assert main(["run", str(npz_2d), "--model", model, "--device", "cuda", "--out", str(tmp_path),
                 "--epochs", "2", "--batch-size", "32", "--quiet"]) == 0
    (run,) = load_runs(tmp_path)
    assert run.status == "completed" and run.device.startswith("cuda")
    assert 0 <= run.value("test.auc") <= 1 and run.cost["dense_macs"] > 0  # an SNN's are accumulates
    paths = [entry["path"] for entry in run.model.get("kernels", [])]
    assert not any(path in ("native lif", "native conv_pool_lif", "native ltc_unfold", "native cfc") for path in paths)


@pytest.mark.parametrize("model", ["snn", "cnn", "lstm"])
def test_bf16_runs_on_cuda_and_is_recorded(npz_2d, tmp_path, model, capsys):
    assert main(["run", str(npz_2d), "--model", model, "--device", "cuda", "--out", str(tmp_path), "--epochs", "2",
                 "--batch-size", "32", "--quiet", "--set", "train.precision=bf16"]) == 0
    (run,) = load_runs(tmp_path)
    assert run.config["train"]["precision"] == "bf16" and run.value("test.auc") is not None


def test_the_same_weights_give_the_same_liquid_outputs_on_cpu_and_cuda():
    from neurocomp.data.encoders import rows
    from neurocomp.models import build_model

    for name in ("ltc", "cfc"):
        encoder = rows(sample_shape=(1, 28, 28))
        torch.manual_seed(0)
        model = build_model(name, encoder=encoder, num_outputs=2).double().eval()
        x = torch.rand(28, 8, 28, dtype=torch.float64)
        with torch.no_grad():
            on_cpu = model(x)
            on_cuda = model.cuda()(x.cuda()).cpu()
        assert torch.allclose(on_cpu, on_cuda, rtol=1e-9, atol=1e-9), name


def test_the_gpu_bench_reports_ratios_and_memory(capsys):
    assert main(["bench", "--device", "cuda", "--model", "snn", "--repeats", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)["snn"]
    assert result["ratio"] > 0 and result["memory_mb_ours"] > 0 and result["memory_mb_reference"] > 0
    assert '"device": "cuda' in err


@pytest.mark.parametrize("name, kernel", [("ltc", "native triton_ltc"), ("cfc", "native triton_cfc")])
def test_liquid_models_on_cuda_run_the_triton_kernels_and_equal_ncps(name, kernel):
    from neurocomp import kernels
    from neurocomp.data.encoders import rows
    from neurocomp.models import build_model

    encoder = rows(sample_shape=(1, 28, 28))
    torch.manual_seed(0)
    model = build_model(name, encoder=encoder, num_outputs=2).cuda()
    assert model.describe()["kernels"][0]["path"] == kernel
    x = encoder(torch.rand(16, 1, 28, 28, device="cuda"))
    parameters = [p for p in model.parameters() if p.requires_grad]
    ours = model(x)
    grads = torch.autograd.grad(ours.sum(), parameters, allow_unused=True)
    with kernels.backend("library"):
        theirs = model(x)
        reference = torch.autograd.grad(theirs.sum(), parameters, allow_unused=True)
    assert (ours - theirs).abs().max() <= 1e-5 * theirs.abs().max()
    for mine, truth in zip(grads, reference):
        assert (mine is None) == (truth is None)
        if truth is not None:
            assert (mine - truth).abs().max() <= 1e-4 * truth.abs().max() + 1e-7
