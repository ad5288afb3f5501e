"""The catalogue of bad input: every command line below ends with exit code 2, one line on stderr
naming the problem, no traceback, and no file left behind in the results folder."""


import numpy as np
import pytest

from conftest import make_npz
from neurocomp.cli import main

RUN = ["--epochs", "1", "--batch-size", "32", "--quiet"]


@pytest.fixture
def world(tmp_path, npz_2d):
    """Files the bad inputs point at, and a results folder with one finished run."""
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "nul.yaml").write_text('base: "a\\0b"\ngrid: {train.seed: [0]}\n')  # a base path with a NUL byte
    base = dict(sizes=(40, 12, 12))
    paths = {
        "npz": npz_2d, "tmp": tmp_path,
        "nan": make_npz(tmp_path / "nan.npz", **base, train_labels=np.full((40, 1), np.nan)),
        "strings": make_npz(tmp_path / "strings.npz", **base, train_labels=np.array([["a"], ["b"]] * 20)),
        "stray": make_npz(tmp_path / "stray.npz", **base, train_labels=np.array([[0], [1]] * 19 + [[1000], [1]])),
        "fraction": make_npz(tmp_path / "fraction.npz", **base, train_labels=np.array([[0.0], [1.5]] * 20)),
        "oneclass": make_npz(tmp_path / "oneclass.npz", **base, train_labels=np.zeros((40, 1), np.uint8)),
    }
    assert main(["run", str(npz_2d), "--model", "mlp", "--out", str(tmp_path / "res"), *RUN]) == 0
    (run_dir,) = (tmp_path / "res" / "runs").iterdir()
    paths["run"] = run_dir
    (tmp_path / "tampered").mkdir()
    for name in ("run.json", "predictions.npz"):
        (tmp_path / "tampered" / name).write_bytes((run_dir / name).read_bytes())
    (tmp_path / "tampered" / "model.pt").write_bytes(b"\x80\x04cos\nsystem\n(S'echo owned'\ntR.")
    return paths


# Run options out of range: flag, value, what the one line says.
OUT_OF_RANGE = [
    ("--epochs", "0", "train.epochs must be at least 1"), ("--epochs", "-1", "train.epochs must be at least 1"),
    ("--batch-size", "0", "train.batch_size must be at least 1"),
    ("--batch-size", "-5", "train.batch_size must be at least 1"), ("--lr", "-1", "train.lr must be positive"),
    ("--threads", "-2", "train.threads must be at least 1"), ("--threads", "0", "train.threads must be at least 1"),
    ("--seed", "99999999999999999999", "train.seed must be in [0, 2^32)"),
    ("--set", "train.monitor=val.foo", "unknown quantity 'val.foo'; choose one of: val.loss"),
    ("--set", "train.momentum=1.5", "train.momentum must be in [0, 1)"),
    ("--set", "train.patience=0", "train.patience must be at least 1"),
    ("--set", "model.backend=fast", "model.backend: 'fast' is not one of"),
    ("--config", "{tmp}", "is a folder, not a YAML file"), ("--config", "{tmp}/binary.yaml", "is not readable text"),
    ("--out", "{tmp}/a_file", "results folder"),
]
# Files that are not what they claim: the dataset argument, what the one line says.
BAD_FILES = [
    ("{tmp}", "is a folder, not a MedMNIST .npz"), ("{tmp}/folder.npz", "is a folder, not a MedMNIST .npz"),
    ("{nan}", "not whole numbers"), ("{strings}", "not whole numbers"), ("{fraction}", "not whole numbers"),
    ("{stray}", "it needs every class 0..1000"),
    ("{oneclass}", "holds classes [0]; it needs every class 0..1 (at least two)"),
]
CATALOGUE = [
    *((["run", "{npz}", flag, value], message) for flag, value, message in OUT_OF_RANGE),
    *((["run", dataset], message) for dataset, message in BAD_FILES),
    (["run", "breast", "--model", "mlp", "--epochs", "0"], "train.epochs must be at least 1"),  # before any data
    (["run", "pneumonia", "--data-dir", "{tmp}/a_file"], "--data-dir {tmp}/a_file: not a folder"),
    (["run", "pneumonia", "--data-dir", "{tmp}/typo"], "--data-dir {tmp}/typo: no such folder"),
    (["run", "{npz}", "--model", "mlp", "--params", "1000M"], "more than half of this machine's"),
    (["table", "{tmp}/res", "--metric", "test.bogus"], "no run record has 'test.bogus'; choose from:"),
    (["table", "{tmp}/res", "--output", "/dev/null/x.md"], "cannot write /dev/null/x.md"),
    (["plot", "{tmp}/res", "--metric", "val.bogus"], "no run record has 'val.bogus'; choose from:"),
    (["plot", "{tmp}/res", "--output", "/dev/null/x.png"], "cannot write /dev/null/x.png"),
    (["export", "{tmp}/tampered", "--onnx"], "is not this run's weights (UnpicklingError"),
    (["bench", "--threads", "-1"], "bench --threads must be at least 1"),
    (["bench", "--repeats", "0"], "bench --repeats must be at least 1"),
    (["sweep", "{tmp}"], "is a folder, not a YAML file"),
    (["sweep", "{tmp}/binary.yaml"], "is not readable text"),
    (["sweep", "{tmp}/a_file", "--workers", "0"], "sweep --workers and --threads must be at least 1"),
    (["sweep", "{tmp}/nul.yaml"], "cannot be opened"),
]


@pytest.mark.parametrize("args, message", CATALOGUE, ids=[" ".join(a[:1] + [m[:40]]) for a, m in CATALOGUE])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(args, message, world, capsys):
    tmp = world["tmp"]
    before = sorted(p for p in tmp.rglob("*"))
    args = [a.format(**world) for a in args]
    if args[0] == "run":  # fast settings and the results folder, unless the case is about them
        defaults = {"--epochs": "1", "--batch-size": "32", "--out": str(tmp / "res")}
        args += [part for flag, value in defaults.items() if flag not in args for part in (flag, value)] + ["--quiet"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message.format(**world) in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert sorted(p for p in tmp.rglob("*")) == before  # nothing written, nothing left behind


def test_the_catalogue_count(capsys):
    # The note reports "N bad inputs tried / N clean": this is N.
    print(f"{len(CATALOGUE)} bad inputs in the catalogue")
    assert len(CATALOGUE) >= 35
