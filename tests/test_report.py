"""The report's prose quotes figures generated from the same runs as its tables (placeholders), and
no sweep description types a metric by hand."""

import re
from pathlib import Path

import pytest

from neurocomp.core.errors import UsageError
from neurocomp.runs.record import load_runs
from neurocomp.analysis.report import _PLACEHOLDER, fill
from test_table import fake_run, two_models, fixed_scores

SWEEPS = sorted(Path(__file__).resolve().parents[1].glob("configs/sweeps/*.yaml"))


def test_placeholders_are_filled_from_the_runs(tmp_path):
    for seed, auc in enumerate([0.80, 0.90, 1.00]):
        fake_run(tmp_path, f"cnn-{seed}", seed=seed, auc=auc, accuracy=0.5)
    fake_run(tmp_path, "mlp-0", model="mlp", auc=0.7)
    reported = [{"model": "cnn", "label": "paper", "metrics": {"test.auc": 0.95}}]
    text = "CNN {cnn:test.auc:pm} over {cnn:n} seeds (std {cnn:test.auc:std}), MLP {mlp:test.auc}, paper {reported cnn:test.auc}"
    assert fill(text, load_runs(tmp_path), reported, None) == \
        "CNN .900 +- .100 over 3 seeds (std .100), MLP .700, paper .950"


def test_a_placeholder_can_name_a_row_by_several_texts(tmp_path):
    fake_run(tmp_path, "cnn-a", lr=0.01, auc=0.6)
    fake_run(tmp_path, "cnn-b", lr=0.001, auc=0.8)
    runs = load_runs(tmp_path)
    assert fill("{cnn[breast & lr=0.01]:test.auc} {cnn[lr=0.001 & breast]:test.auc}", runs, [], None) == ".600 .800"
    with pytest.raises(UsageError, match="matches 2 rows"):
        fill("{cnn[breast]:test.auc}", runs, [], None)


def test_the_auc_difference_placeholder_is_the_tables(tmp_path):
    runs = [*two_models(tmp_path, [0, 1], fixed_scores)]
    mlp, cnn = runs
    text = fill("{mlp:delta}", mlp + cnn, [], "cnn")
    assert re.fullmatch(r"-\.\d{3} \[-\.\d{3}, [-+]\.\d{3}\]", text)


@pytest.mark.parametrize("text, message", [
    ("{lstm:test.auc}", "matches 0 rows"),
    ("{cnn:test.bogus}", "no run of that row has test.bogus"),
    ("{reported mlp:test.auc}", "matches 0 reported rows"),
    ("{cnn:delta}", "needs paired test predictions"),
])
def test_a_placeholder_that_names_nothing_stops_the_report(tmp_path, text, message):
    fake_run(tmp_path, "cnn-0")
    with pytest.raises(UsageError, match=message):
        fill(text, load_runs(tmp_path), [], None)


@pytest.mark.parametrize("sweep", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_no_description_types_a_metric_by_hand(sweep):
    # A figure like .871 or 0.765 in the prose would drift from the tables when the code changes.
    import yaml

    description = yaml.safe_load(sweep.read_text()).get("description") or ""
    typed = re.findall(r"(?<![\w.])[+-]?0?\.\d{2,}", _PLACEHOLDER.sub("", description))
    assert not typed, f"{sweep.name}: typed figures {typed}; use placeholders (neurocomp/analysis/report.py)"
