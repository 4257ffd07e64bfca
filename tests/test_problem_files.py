"""Problem files (JSONL / Parquet): read into the Problem schema; every error names the row and field.

Run: `pytest tests/test_problem_files.py`
"""

import json

import polars as pl
import pytest

from sharpen.io import write_frame
from sharpen.schemas import Problem
from sharpen.tasks.files import MAX_FIELD_CHARS, ProblemFileError, make_splits, read_problem_file


def jsonl(path, *rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOOD = [{"id": 2, "prompt": "1+1=", "answer": 2}, {"id": "a", "prompt": "What is 3*4?", "answer": "12", "category": "mul"}]


def test_jsonl_reads_into_the_problem_schema(tmp_path):
    frame, ignored = read_problem_file(jsonl(tmp_path / "p.jsonl", *GOOD))
    assert frame.to_dicts() == [
        {"problem_id": "2", "prompt": "1+1=", "answer": "2", "category": "all"},
        {"problem_id": "a", "prompt": "What is 3*4?", "answer": "12", "category": "mul"},
    ]
    assert ignored == []
    write_frame(frame, tmp_path / "out.parquet", Problem)  # validates


def test_parquet_reads_the_same_as_jsonl(tmp_path):
    pl.DataFrame({"id": ["2", "a"], "prompt": ["1+1=", "What is 3*4?"], "answer": ["2", "12"],
                  "category": [None, "mul"]}).write_parquet(tmp_path / "p.parquet")
    assert read_problem_file(tmp_path / "p.parquet")[0].equals(read_problem_file(jsonl(tmp_path / "p.jsonl", *GOOD))[0])


def test_tests_are_kept_and_unknown_fields_listed(tmp_path):
    frame, ignored = read_problem_file(jsonl(tmp_path / "p.jsonl", {"id": "f", "prompt": "def f():\n", "answer": "",
                                                                    "tests": "assert f() is None", "source": "me"}))
    assert frame["tests"].to_list() == ["assert f() is None"] and ignored == ["source"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "x", "prompt": "1+1="}\n', "line 1: missing field 'answer'"),
        ('{"id": "x", "prompt": 5, "answer": "1"}\n', "line 1: field 'prompt' must be a string, got int"),
        ('{"id": "x", "prompt": "p", "answer": null}\n', "line 1: field 'answer' must be a string, got null"),
        ('{"id": true, "prompt": "p", "answer": "1"}\n', "line 1: field 'id' must be a string, got a boolean"),
        ('{"id": "x", "prompt": " ", "answer": "1"}\n', "line 1: field 'prompt' is empty"),
        ('{"id": "x", "prompt": "p", "answer": ""}\n', "line 1: field 'answer' is empty"),
        ('{"id": "x", "prompt": "p", "answer": "1"}\n{"id": "x", "prompt": "q", "answer": "2"}\n',
         "line 2: duplicate id 'x' (first at"),
        ('{"id": "x", "prompt": "p", "answer": "1"}\n{"id": "y", "prompt": \n', "line 2: not valid JSON"),
        ('["x", "p", "1"]\n', "line 1: a JSON array, but p.jsonl is read as JSON Lines"),
        ("", "no problems (the file is empty)"),
    ],
    ids=["missing", "wrong-type", "null", "bool-id", "blank-prompt", "blank-answer", "duplicate", "bad-json", "array", "empty"],
)
def test_bad_rows_name_the_line_and_field(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ProblemFileError, match=f"{path}.*{message}".replace("(", r"\(").replace(")", r"\)")):
        read_problem_file(path)


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"id": "x", "prompt": "p", "answer": "1"}\n{"id": "y", "prompt": "\xff", "answer": "1"}\n')
    with pytest.raises(ProblemFileError, match="line 2: not UTF-8"):
        read_problem_file(path)


def test_a_huge_field_is_refused(tmp_path):
    path = jsonl(tmp_path / "p.jsonl", {"id": "x", "prompt": "p" * (MAX_FIELD_CHARS + 1), "answer": "1"})
    with pytest.raises(ProblemFileError, match="line 1: field 'prompt' has 1,000,001 characters"):
        read_problem_file(path)


def test_parquet_missing_column_is_named(tmp_path):
    pl.DataFrame({"id": ["1"], "prompt": ["p"]}).write_parquet(tmp_path / "p.parquet")
    with pytest.raises(ProblemFileError, match="row 1: missing field 'answer'"):
        read_problem_file(tmp_path / "p.parquet")


def test_parquet_row_errors_name_the_row(tmp_path):
    pl.DataFrame({"id": ["1", "2"], "prompt": ["p", None], "answer": ["1", "2"]}).write_parquet(tmp_path / "p.parquet")
    with pytest.raises(ProblemFileError, match="row 2: field 'prompt' must be a string, got null"):
        read_problem_file(tmp_path / "p.parquet")


def test_unknown_format_is_refused(tmp_path):
    (tmp_path / "p.csv").write_text("id,prompt,answer\n")
    with pytest.raises(ProblemFileError, match="unknown format '.csv'"):
        read_problem_file(tmp_path / "p.csv")


def test_held_out_is_drawn_by_seed_and_disjoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/problems").mkdir(parents=True)
    jsonl(tmp_path / "data/problems/p.jsonl", *[{"id": i, "prompt": f"{i}+1=", "answer": i + 1} for i in range(20)])
    pool, held_out = make_splits("data/problems/p.jsonl", None, eval_size=5, seed=1)
    again = make_splits("data/problems/p.jsonl", None, eval_size=5, seed=1)[1]
    assert (pool.height, held_out.height) == (15, 5) and held_out.equals(again)
    assert not set(pool["problem_id"]) & set(held_out["problem_id"])


def test_held_out_file_overlapping_the_pool_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/problems").mkdir(parents=True)
    jsonl(tmp_path / "data/problems/p.jsonl", *GOOD)
    jsonl(tmp_path / "data/problems/e.jsonl", GOOD[1])
    with pytest.raises(ProblemFileError, match="1 id\\(s\\) also in"):
        make_splits("data/problems/p.jsonl", "data/problems/e.jsonl", eval_size=1, seed=0)


def test_a_file_outside_the_dvc_dependency_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jsonl(tmp_path / "p.jsonl", *GOOD)
    with pytest.raises(ProblemFileError, match="outside data/problems"):
        make_splits("p.jsonl", None, eval_size=1, seed=0)


def saved_gsm8k_like(tmp_path):
    """A DatasetDict in GSM8K's shape (question, answer with a rationale, no id), saved to disk."""
    from datasets import Dataset, DatasetDict

    rows = {"question": ["What is 2+3?", "What is 4*5?"], "answer": ["2+3=5\n#### 5", "4*5=20\n#### 20"]}
    DatasetDict({"train": Dataset.from_dict(rows), "test": Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "gsm"))
    return tmp_path / "gsm"


def test_a_saved_hf_dataset_is_read_with_field_mapping(tmp_path):
    frame, ignored = read_problem_file(saved_gsm8k_like(tmp_path), {"prompt": "question", "id": "@row"}, split="test")
    assert frame.select("problem_id", "prompt").rows() == [("1", "What is 2+3?"), ("2", "What is 4*5?")]
    assert frame["answer"][1].endswith("#### 20") and ignored == []


def test_an_unknown_split_names_the_ones_there(tmp_path):
    with pytest.raises(ProblemFileError, match="task.split: .* has no split 'validation'; it has train, test"):
        read_problem_file(saved_gsm8k_like(tmp_path), {"prompt": "question", "id": "@row"}, split="validation")


def test_a_mapping_to_an_unknown_field_is_refused(tmp_path):
    with pytest.raises(ProblemFileError, match="task.fields: question are not problem fields"):
        read_problem_file(jsonl(tmp_path / "p.jsonl", *GOOD), {"question": "prompt"})


def test_a_json_file_may_hold_one_array_of_objects(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(GOOD, indent=2))
    assert read_problem_file(tmp_path / "p.json")[0].equals(read_problem_file(jsonl(tmp_path / "p.jsonl", *GOOD))[0])


@pytest.mark.parametrize("text", [json.dumps(GOOD) + "\n", json.dumps(GOOD, indent=2) + "\n"])
def test_an_array_in_a_jsonl_file_is_told_json_lines_is_expected(tmp_path, text):
    (tmp_path / "p.jsonl").write_text(text)
    with pytest.raises(ProblemFileError, match="line 1: a JSON array, but p.jsonl is read as JSON Lines"):
        read_problem_file(tmp_path / "p.jsonl")


def test_a_lone_surrogate_is_refused_naming_the_row_and_field(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "ok \\udcff", "answer": "1"}\n')
    with pytest.raises(ProblemFileError, match="line 1: field 'prompt' holds '\\\\udcff' at character 4"):
        read_problem_file(tmp_path / "p.jsonl")


def test_a_symlink_in_the_problems_folder_to_a_file_elsewhere_is_read(tmp_path, monkeypatch):
    """DVC hashes what a link in its dependency folder points to, so editing the target reruns the round."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data/problems").mkdir(parents=True)
    target = jsonl(tmp_path / "elsewhere.jsonl", *GOOD, {"id": "c", "prompt": "2*2=", "answer": "4"})
    (tmp_path / "data/problems/p.jsonl").symlink_to(target)
    pool, held = make_splits("data/problems/p.jsonl", None, eval_size=1, seed=0)
    assert pool.height == 2 and held.height == 1
