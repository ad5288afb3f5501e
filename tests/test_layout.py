"""The tree shows the pipeline: every module sits in a stage folder, imports only from its own stage
or the ones below it (at run time: imports under TYPE_CHECKING are for annotations), and there is
no import circle; the import paths from before the stage folders still work for one release, with a
DeprecationWarning."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neurocomp"
STAGES = ["core", "kernels", "data", "models", "training", "runs", "analysis", "cli"]  # bottom to top


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The package's modules that ``name`` imports at run time, anywhere in it."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    annotations_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                        and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
            continue
        base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
        target = ".".join(base + ([node.module] if node.module else []))
        named = {f"{target}.{alias.name}" for alias in node.names} & set(known)
        found |= named or ({target} & set(known))
    return found - {name}


def stage(name: str) -> int:
    return STAGES.index(name.split(".")[1])


def test_every_module_sits_in_a_stage_folder():
    loose = [name for name in modules() if name.count(".") == 1 and name.split(".")[1] not in STAGES + ["__main__"]]
    assert not loose, f"modules outside a stage folder: {loose}"


def test_each_stage_imports_only_from_itself_and_the_stages_below():
    known = modules()
    upward = [(name, target) for name, path in known.items() if name.count(".") >= 1 and name.split(".")[1] in STAGES
              for target in imports(name, path, known)
              if target.count(".") >= 1 and target.split(".")[1] in STAGES and stage(target) > stage(name)]
    assert not upward, f"imports from a higher stage: {upward}"


def test_no_import_circles():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    done, path = set(), []

    def visit(node):
        if node in path:
            raise AssertionError(f"import circle: {' -> '.join(path[path.index(node):] + [node])}")
        if node in done:
            return
        path.append(node)
        for child in sorted(graph[node]):
            visit(child)
        path.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("old, new", [("neurocomp.record", "neurocomp.runs.record"),
                                      ("neurocomp.run", "neurocomp.runs.pipeline"),
                                      ("neurocomp.abilities", "neurocomp.core.abilities")])
def test_an_old_import_path_is_the_new_module_with_a_deprecation_warning(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new) and module.__name__ == new


def test_the_old_data_module_names_are_forwarded_with_a_warning():
    from neurocomp.core.catalogue import DATASETS
    from neurocomp.data.datasets import load_dataset

    with pytest.warns(DeprecationWarning, match="neurocomp.data.load_dataset moved"):
        from neurocomp.data import load_dataset as old
    with pytest.warns(DeprecationWarning, match="neurocomp.core.catalogue.DATASETS"):
        from neurocomp.data import DATASETS as old_datasets
    assert old is load_dataset and old_datasets is DATASETS
