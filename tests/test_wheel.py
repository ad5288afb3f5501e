"""A normal (non-editable) install carries every file the native kernels compile from, and the kernels
build and compute from that install: the wheel is built, installed into a fresh virtual environment
and its CfC and LIF kernels are compiled there from scratch (each includes a shared header) and
checked against the libraries (ncps, snnTorch)."""

import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
CHECK = """
import sys, torch
import neurocomp
from neurocomp import kernels
from neurocomp.training.assemble import build
from neurocomp.core.config import resolve
assert sys.argv[1] in neurocomp.__file__, neurocomp.__file__
for model_config in ("cfc", {"name": "snn", "channels": []}):  # the CfC and the LIF kernel
    encoder, model = build(resolve({"model": model_config, "encoder": "rows"}), (1, 12, 12), 2)
    model.double()
    assert all(e["path"].startswith("native") for e in model.describe()["kernels"]), model.describe()
    x = encoder(torch.rand(5, 1, 12, 12, dtype=torch.float64), torch.Generator().manual_seed(0))
    ours = model(x)
    with kernels.backend("library"):
        theirs = model(x)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12), (model_config, ours, theirs)
print("kernels from the wheel agree with the libraries")
"""


def run(*command, **options):
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, **options)
    assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_ships_and_builds_the_kernels(tmp_path):
    # From a copy: setuptools leaves a build/ folder in the tree it builds.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "results", "*.egg-info", "__pycache__"))
    # As a user builds it: pip fetches the build backend (setuptools) into an isolated environment.
    run(sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp_path))
    (wheel,) = tmp_path.glob("neurocomp-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sources = {f"neurocomp/kernels/csrc/{path.name}" for path in (ROOT / "neurocomp" / "kernels" / "csrc").iterdir()}
    assert sources <= shipped, f"missing from the wheel: {sorted(sources - shipped)}"

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    # The packages of the environment running the tests (torch, ncps, ...), after the venv's own:
    # --system-site-packages would show a venv's base interpreter, which has none of them. A path
    # line does not run that folder's .pth files, so an editable neurocomp there stays out of sight.
    inner = run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(inner, "outer-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel))
    # A fresh extension cache: the kernels compile from the installed sources, not an earlier build.
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    out = run(str(python), "-c", CHECK, str(venv), cwd=tmp_path, env=env)
    assert "agree with the libraries" in out
