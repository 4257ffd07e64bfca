"""Every DVC stage depends on all the code it runs: the transitive closure of its project imports.

A module a stage imports (at the top or inside a function) that its `deps` in dvc.yaml do not
cover would let DVC reuse a stale output after that module changed (verify once imported
sharpen/sampling.py and the loop state module without depending on them). The closure is read from the
source (sharpen/codedeps.py); `sharpen deps` writes it into dvc.yaml.

Run: `pytest tests/test_stage_deps.py`
"""

from __future__ import annotations

import shutil

import pytest

from sharpen.codedeps import closure, differences, import_cycles, import_graph, imports_of, rewrite
from sharpen.io import read_yaml
from tests.conftest import PROJECT

STAGES = read_yaml(PROJECT / "dvc.yaml")["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_depends_on_exactly_the_code_it_imports(stage):
    missing, extra = differences(PROJECT).get(stage, ([], []))
    assert not missing, f"dvc.yaml: stage {stage} imports {missing} but does not depend on them; run `sharpen deps`"
    assert not extra, f"dvc.yaml: stage {stage} depends on {extra} but never imports them; run `sharpen deps`"


def test_the_closure_follows_lazy_and_transitive_imports():
    files = {p.relative_to(PROJECT).as_posix() for p in closure(PROJECT, "stages.evaluate")}
    assert "sharpen/verifiers/math.py" in files  # through sharpen.verifiers
    assert "sharpen/backends/fanout.py" in files  # imported inside a function
    assert "sharpen/rounds/report.py" not in files


def test_a_new_import_is_caught_and_written(tmp_path):
    for name in ("sharpen", "stages"):
        shutil.copytree(PROJECT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "dvc.yaml", tmp_path / "dvc.yaml")
    filter_py = tmp_path / "stages/filter.py"
    filter_py.write_text(filter_py.read_text() + "\n\ndef _late():\n    from sharpen.rounds import report  # noqa: F401\n")
    assert "sharpen/rounds/report.py" in differences(tmp_path)["filter"][0]
    assert rewrite(tmp_path) == ["filter"]
    assert not differences(tmp_path)
    assert "sharpen/rounds/report.py" in read_yaml(tmp_path / "dvc.yaml")["stages"]["filter"]["deps"]


def test_no_module_imports_one_that_imports_it_back():
    assert import_cycles(import_graph(PROJECT)) == []


def test_an_import_circle_is_found():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_reads_the_rounds_package_only_through_its_state_layout_and_lock(stage):
    """Stages are below the code between rounds: they may read the loop state and check the loop's lock
    (a stage started by hand while a loop runs is refused), never run advance or git."""
    rounds = {p.relative_to(PROJECT).as_posix() for p in closure(PROJECT, f"stages.{stage}")
              if p.relative_to(PROJECT).parts[:2] == ("sharpen", "rounds")}
    assert rounds <= {"sharpen/rounds/__init__.py", "sharpen/rounds/layout.py", "sharpen/rounds/state.py",
                      "sharpen/rounds/lock.py"}, rounds


def test_the_rounds_package_imports_no_stage_or_flow():
    for path in sorted((PROJECT / "sharpen/rounds").glob("*.py")):
        above = {m for m in imports_of(PROJECT, path, ("sharpen", "stages", "flows")) if not m.startswith("sharpen")}
        assert not above, f"{path.relative_to(PROJECT)} imports {sorted(above)}: stages and flows sit above sharpen/rounds"
