"""Property-based tests of everything the suite reads from a user (Hypothesis): any bytes as a .npz,
any YAML document as a config or a sweep file, any JSON as a run record give either a valid object
or the suite's one-line UsageError, never another exception."""

import io
import json

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocomp.core.config import DatasetConfig, RunConfig, load_yaml, resolve
from neurocomp.data.datasets import load_dataset
from neurocomp.core.errors import UsageError
from neurocomp.runs.record import RunRecord
from neurocomp.runs.sweep import expand, load_sweep

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=12))
KEYS = ["dataset", "model", "encoder", "train", "params", "out", "name", "epochs", "seed", "lr", "hidden", "base",
        "grid", "variants", "train.seed", "model.name", "run_id", "status", "config", "metrics", "test", "auc",
        "schema", "completed", "mlp", "cnn", "breast", "static"]
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5)),
    max_leaves=20)


sections = {
    "dataset": st.dictionaries(st.sampled_from(["name", "size", "positive", "resize", "download"]), scalars, max_size=3),
    "model": st.one_of(st.sampled_from(["mlp", "cnn", "snn", "ltc", "nope"]), st.dictionaries(
        st.sampled_from(["name", "hidden", "channels", "backend", "beta", "units"]),
        st.one_of(scalars, st.sampled_from(["mlp", "cnn", "auto"]), st.lists(st.integers(-2, 40), max_size=3)), max_size=3)),
    "encoder": st.one_of(st.sampled_from(["static", "rate", "rows", "morse"]),
                         st.dictionaries(st.sampled_from(["name", "steps", "gain", "size"]), scalars, max_size=2)),
    "train": st.dictionaries(st.sampled_from(["epochs", "batch_size", "lr", "seed", "monitor", "patience", "threads",
                                              "optimizer", "momentum"]), scalars, max_size=4),
    "params": scalars, "out": scalars,
}
configs = st.fixed_dictionaries({}, optional=sections)
sweeps = st.fixed_dictionaries({}, optional={
    "base": st.one_of(configs, scalars), "title": scalars,
    "variants": st.one_of(scalars, st.lists(st.one_of(configs, st.dictionaries(st.sampled_from(["model.name", "train.lr"]),
                                                                               scalars, max_size=2)), max_size=3)),
    "grid": st.one_of(scalars, st.dictionaries(st.sampled_from(["train.seed", "model.hidden", "bogus"]),
                                               st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=2)),
})


def either_valid_or_usage_error(read):
    try:
        return read()
    except UsageError as error:
        assert "\n" not in str(error)
        return None


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_as_an_npz(tmp_path, data):
    path = tmp_path / "any.npz"
    path.write_bytes(data)
    either_valid_or_usage_error(lambda: load_dataset(DatasetConfig(name=str(path))))


split_arrays = st.fixed_dictionaries({}, optional={
    f"{split}_{kind}": st.sampled_from(["uint8-images", "rgb", "float-images", "labels", "float-labels", "nan-labels",
                                        "wide-labels", "empty", "strings"])
    for split in ("train", "val", "test") for kind in ("images", "labels")})
ARRAYS = {
    "uint8-images": np.zeros((4, 6, 6), np.uint8), "rgb": np.zeros((4, 6, 6, 3), np.uint8),
    "float-images": np.zeros((4, 6, 6)), "labels": np.array([[0], [1], [0], [1]]),
    "float-labels": np.array([0.5, 1, 0, 1]), "nan-labels": np.full((4, 1), np.nan),
    "wide-labels": np.eye(4, dtype=np.uint8), "empty": np.zeros((0,)), "strings": np.array(["a", "b", "c", "d"]),
}


@SETTINGS
@given(layout=split_arrays)
def test_any_arrays_as_an_npz(tmp_path, layout):
    path = tmp_path / "arrays.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **{key: ARRAYS[kind] for key, kind in layout.items()})
    path.write_bytes(buffer.getvalue())
    either_valid_or_usage_error(lambda: load_dataset(DatasetConfig(name=str(path))))


@SETTINGS
@given(document=st.one_of(documents, configs))
def test_any_yaml_as_a_config(tmp_path, document):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    config = either_valid_or_usage_error(lambda: resolve(load_yaml(path)))
    assert config is None or isinstance(config, RunConfig)


@SETTINGS
@given(document=st.one_of(documents, sweeps))
def test_any_yaml_as_a_sweep(tmp_path, document):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(document))
    either_valid_or_usage_error(lambda: expand(load_sweep(path)))


@SETTINGS
@given(document=documents)
def test_any_json_as_a_run_record(tmp_path, document):
    (tmp_path / "run.json").write_text(json.dumps(document))
    record = either_valid_or_usage_error(lambda: RunRecord.read(tmp_path))
    if record is not None:  # what reads a record can read this one
        record.value("test.auc"), record.quantities(), record.identity
