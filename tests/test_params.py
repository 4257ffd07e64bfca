"""params.yaml validation: every bad value fails before work starts, naming the key.

Run: `pytest tests/test_params.py`
"""

from pathlib import Path

import pytest

from sharpen.recipes import RECIPES
import yaml

from sharpen.params import Params, ParamsError
from sharpen.config import load_params
from tests.conftest import PROJECT


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def shipped() -> dict:
    return yaml.safe_load((PROJECT / "params.yaml").read_text())


def test_shipped_params_load_every_section():
    p = load_params(PROJECT / "params.yaml")
    assert isinstance(p, Params)
    assert set(shipped()) == set(Params.model_fields)  # every section is there (DVC tracks them by name)


@pytest.mark.parametrize(
    "section, key, value, expect",
    [
        ("generate", "k", 0, "generate.k"),
        ("generate", "temperature", -0.1, "generate.temperature"),
        ("generate", "k", "eight", "generate.k"),
        ("generate", "backend", "tgi", "'hf', 'vllm', 'openai' or 'vllm-server'"),
        ("train", "init", "scratch", "'base' or 'previous'"),
        ("filter", "select", "magic", "'correct', 'threshold' or 'all'"),
        ("filter", "groups", [{"rule": "group_band", "lo": 0.9, "hi": 0.1}], "filter.groups.0.group_band"),
        ("filter", "groups", [{"rule": "bandd"}], "filter.groups.0"),
        ("verify", "labels", "silver", "'gold', 'majority' or 'judge'"),
        ("evaluate", "pass_k", [1, 64], "pass_k"),
        ("task", "min_digits", 5, "min_digits (5) > max_digits"),
    ],
)
def test_bad_value_names_the_key(tmp_path, section, key, value, expect):
    data = shipped()
    data.setdefault(section, {})[key] = value
    with pytest.raises(ParamsError, match=None) as err:
        load_params(write(tmp_path, data))
    assert expect in str(err.value)


def test_unknown_key_lists_allowed_keys(tmp_path):
    data = shipped()
    data["generate"]["temprature"] = 0.7
    with pytest.raises(ParamsError) as err:
        load_params(write(tmp_path, data))
    assert "generate.temprature: unknown key" in str(err.value)
    assert "temperature" in str(err.value).split("allowed:")[1]


def test_unknown_recipe_lists_allowed(tmp_path):
    data = shipped()
    data["recipe"] = "rest-me"
    with pytest.raises(ParamsError) as err:
        load_params(write(tmp_path, data))
    assert "recipe" in str(err.value) and "'rest-em'" in str(err.value)


def test_unknown_task_lists_allowed(tmp_path):
    data = shipped()
    data["task"]["name"] = "gsm8k"
    with pytest.raises(ParamsError, match="task.name"):
        load_params(write(tmp_path, data))


def test_yaml_syntax_error_names_file(tmp_path):
    path = write(tmp_path, "round: 1\ngenerate: {k: [\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_cli_reports_bad_params_without_traceback(tmp_path):
    import subprocess
    import sys

    data = shipped()
    data["generate"]["k"] = 0
    path = write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "sharpen.cli", "params", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "generate.k" in proc.stderr and "Traceback" not in proc.stdout + proc.stderr


def test_unknown_recipe_name_lists_recipes(tmp_path):
    data = shipped()
    data["recipe"] = "stars"
    with pytest.raises(ParamsError) as err:
        load_params(write(tmp_path, data))
    assert "recipe: unknown recipe 'stars'" in str(err.value) and "'star'" in str(err.value)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_resolves_to_valid_params(tmp_path, recipe):
    data = shipped()
    data["recipe"] = recipe
    assert load_params(write(tmp_path, data)).recipe == recipe


def test_recipe_sets_its_defaults(tmp_path):
    data = shipped()
    data["recipe"] = "star"
    p = load_params(write(tmp_path, data))
    assert (p.synthesize.kind, p.task.scratchpad, p.generate.k, p.train.init) == ("rationalize", True, 1, "base")


def test_params_file_overrides_the_recipe(tmp_path):
    data = shipped()
    data["recipe"] = "sws"
    data["synthesize"] = {"weakness": {"budget": 17}}
    data["filter"] = {"cap": 3}
    p = load_params(write(tmp_path, data))
    assert (p.synthesize.weakness.budget, p.synthesize.weakness.band, p.filter.cap) == (17, (0.125, 0.875), 3)


def test_parameter_of_another_recipe_is_refused(tmp_path):
    data = shipped()  # rest-em
    data["synthesize"] = {"weakness": {"budget": 17}}
    with pytest.raises(ParamsError) as err:
        load_params(write(tmp_path, data))
    assert "synthesize.weakness.budget: recipe 'rest-em' does not take this parameter (recipes that do: sws)" in str(err.value)


def test_switching_a_method_kind_is_refused(tmp_path):
    data = shipped()
    data["recipe"] = "star"
    data["synthesize"] = {"kind": "weakness"}
    with pytest.raises(ParamsError, match="synthesize.kind: recipe 'star' uses 'rationalize'"):
        load_params(write(tmp_path, data))


def test_threshold_without_tau_or_controller_is_refused(tmp_path):
    data = shipped()
    data["filter"] = {"select": "threshold"}
    with pytest.raises(ParamsError, match="filter.tau"):
        load_params(write(tmp_path, data))


@pytest.mark.parametrize(("section", "key", "value"), [
    ("train", "lr", float("inf")), ("train", "epochs", float("nan")), ("generate", "temperature", float("inf")),
    ("base", "lr", float("-inf")), ("generate", "k", True), ("train", "batch_size", False), ("generate", "k", 100_000),
])
def test_numbers_are_finite_bounded_and_not_booleans(tmp_path, section, key, value):
    data = yaml.safe_load((PROJECT / "params.yaml").read_text())
    data.setdefault(section, {})[key] = value
    with pytest.raises(ParamsError, match=rf"{section}"):
        load_params(write(tmp_path, data))


def test_json_output_never_holds_nan():
    import json

    from sharpen.cli import _json_safe

    text = json.dumps(_json_safe({"a": float("nan"), "b": [1.0, float("inf")], "c": "x"}), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": "x"}


def with_lines(*lines: str) -> str:
    """The shipped params.yaml text with `lines` appended to its generate/filter sections (block style)."""
    text = (PROJECT / "params.yaml").read_text()
    return text + "\n" + "\n".join(lines) + "\n"


def dvc_reads(path: Path) -> dict:
    from dvc.utils.serialize import load_yaml

    return load_yaml(str(path))


@pytest.mark.parametrize(("section", "key", "text", "value"), [
    ("generate", "k", "010", 10),          # YAML 1.1 read an octal 8; DVC (YAML 1.2) records 10
    ("train", "lr", "1e-3", 0.001),        # YAML 1.1 read the string '1e-3'
    ("generate", "k", "0o10", 8),
])
def test_a_value_means_to_the_run_what_dvc_records(tmp_path, section, key, text, value):
    data = shipped()
    data[section] = {key: "PLACEHOLDER"}
    path = write(tmp_path, yaml.safe_dump(data).replace("PLACEHOLDER", text))
    ours = getattr(getattr(load_params(path), section), key)
    assert ours == value == dvc_reads(path)[section][key]


@pytest.mark.parametrize("word", ["off", "no", "yes", "on", "0"])
def test_a_switch_takes_only_true_or_false(tmp_path, word):
    data = shipped()
    data["filter"] = {"dedup": "PLACEHOLDER"}
    with pytest.raises(ParamsError, match=r"filter.dedup: .*expected true or false"):
        load_params(write(tmp_path, yaml.safe_dump(data).replace("PLACEHOLDER", word)))


def test_a_duplicate_key_is_an_error_naming_its_line(tmp_path):
    text = (PROJECT / "params.yaml").read_text() + "seed: 3\n"
    line = text.count("\n")
    with pytest.raises(ParamsError, match=rf'params.yaml line {line}: not valid YAML: found duplicate key "seed"'):
        load_params(write(tmp_path, text))


def test_grpo_epochs_over_stored_groups_set_the_steps():
    from sharpen.params import GRPOParams

    assert GRPOParams(rollouts="round", epochs=3).steps_for(groups=1929, batch_size=128) == 362  # 3 x 1929 x 8 / 128
    assert GRPOParams(rollouts="round", steps=7).steps_for(groups=1929, batch_size=128) == 7
    with pytest.raises(ValueError, match="epochs: passes over stored groups are for rollouts: round"):
        GRPOParams(rollouts="online", epochs=3)
