"""Choosing a recipe: each one's measured result and cost is stated once (sharpen/recipe_outcomes.py),
printed by `sharpen recipes`, held by the README's recipes section, and taken from RESULTS.md.

Run: `pytest tests/test_recipe_outcomes.py`
"""

import re

import yaml

from sharpen.recipe_outcomes import NOT_MEASURED, OUTCOMES, START, markdown_table
from sharpen.recipes import RECIPES
from tests.conftest import PROJECT

NUMBER = r"\d[\d,]*(?:\.\d+)?"


def _readme() -> list[str]:
    return (PROJECT / "README.md").read_text(encoding="utf-8").splitlines()


def _section(lines: list[str], title: str) -> list[str]:
    start = lines.index(title)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    return lines[start:end]


def test_every_recipe_has_an_outcome_and_no_other():
    assert set(OUTCOMES) == set(RECIPES)


def test_an_unmeasured_recipe_says_so_in_every_field():
    for name, o in OUTCOMES.items():
        if o.seeds == 0:
            assert (o.result, o.samples, o.minutes) == (NOT_MEASURED,) * 3, name


def test_every_number_is_one_results_md_holds():
    results = set(re.findall(NUMBER, (PROJECT / "RESULTS.md").read_text(encoding="utf-8")))
    for name, o in OUTCOMES.items():
        for field in (o.result, o.samples, o.minutes):
            assert set(re.findall(NUMBER, field)) <= results, (name, field)


def test_readme_holds_the_outcome_table_as_the_data_says():
    lines = _readme()
    table = markdown_table()
    start = lines.index(table[0])
    assert lines[start:start + len(table)] == table
    assert lines[start + len(table)].strip() == ""  # no stale rows after it


def test_readme_recipes_table_is_one_block_listing_every_recipe_once():
    section = _section(_readme(), "## Recipes")
    start = next(i for i, line in enumerate(section) if line.startswith("| recipe | what it does here"))
    end = start
    while end < len(section) and section[end].startswith("|"):
        end += 1
    names = [re.match(r"\| `([^`]+)` \|", line).group(1) for line in section[start + 2:end]]
    assert sorted(names) == sorted(RECIPES)  # a blank line would end the table early (its later rows render as text)


def test_params_yaml_comment_names_every_recipe():
    text = (PROJECT / "params.yaml").read_text(encoding="utf-8")
    comment = "".join(line.split("#", 1)[1] for line in text.splitlines()[:12] if "#" in line)
    assert yaml.safe_load(text)["recipe"] == "rest-em"
    for name in RECIPES:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", comment), name


def test_sharpen_recipes_prints_each_result_and_where_to_start():
    from typer.testing import CliRunner

    from sharpen.cli import app

    flat = lambda *args: " ".join(CliRunner().invoke(app, ["recipes", *args]).stdout.split())  # noqa: E731
    assert " ".join(START.split()) in flat()
    for name in RECIPES:
        one, o = flat(name), OUTCOMES[name]
        assert (f"{o.result};" if o.seeds else NOT_MEASURED) in one, name
        if o.seeds:
            assert o.samples in one and o.minutes in one, name
