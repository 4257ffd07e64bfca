"""The params of the data the loop starts from: `task` (the problem source) and `base` (the embedded tiny model).

Run: `sharpen params` validates these sections of params.yaml with the rest.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sharpen.params.section import _Section, known_or_plugin

TASK_NAMES = ("arithmetic", "file", "humaneval", "reasoning_gym")


class TaskParams(_Section):
    """The problem source: `arithmetic` (the embedded default: integer addition), `file` (the
    user's JSONL/Parquet under data/problems/, see sharpen/tasks/files.py) or `humaneval`."""

    name: str = Field("arithmetic", description="arithmetic | file | humaneval | reasoning_gym, or your own problem "
                      "source by import path, module:function (sharpen/tasks/plugin.py)")
    path: str | None = Field(None, description="file: the problem file, under data/problems/")
    eval_path: str | None = Field(None, description="file: a held-out file; null = draw eval_size from `path`")
    fields: dict[str, str] = Field(default_factory=dict, description="file: our field -> the source's column")
    split: str = Field("train", description="file: the split of a saved DatasetDict")
    template: str = Field("{prompt}", description="the prompt the model reads; {prompt}, and {a} {b} for arithmetic")
    chat: Literal["auto", "never"] = Field("auto", description="auto: apply the tokenizer's chat template if it has one")
    dataset: str | None = Field(None, description="reasoning_gym: the dataset name, e.g. basic_arithmetic")
    config: dict[str, Any] = Field(default_factory=dict, description="reasoning_gym: the dataset's config")
    min_digits: int = Field(1, ge=1, le=9, description="fewest digits in an operand")
    max_digits: int = Field(3, ge=1, le=9, description="most digits in an operand")
    scratchpad: bool = Field(False, description="answers carry a per-digit scratchpad before '|'")
    pool_size: int = Field(4096, ge=1, description="training problems in the pool")
    eval_size: int = Field(500, ge=1, description="held-out problems, disjoint from the pool")
    seed: int = 1234

    @field_validator("name")
    @classmethod
    def _known_task(cls, value: str) -> str:
        return known_or_plugin(value, TASK_NAMES, "task")

    @model_validator(mode="after")
    def _digits_ordered(self) -> TaskParams:
        if self.name == "file" and self.path is None:
            raise ValueError("`name: file` needs `path` (a .jsonl or .parquet file under data/problems/)")
        if self.name != "file" and (self.path, self.eval_path) != (None, None):
            raise ValueError(f"path/eval_path are for `name: file`, not {self.name!r}")
        if (self.name == "reasoning_gym") != (self.dataset is not None):
            raise ValueError("`dataset` is needed by, and only by, `name: reasoning_gym`")
        if why := template_problem(self.template, self.name):
            raise ValueError(f"template: {self.template!r} {why}")
        if "{prompt}" not in self.template and not (self.name == "arithmetic" and "{a}" in self.template):
            raise ValueError(f"template: {self.template!r} does not place the problem ({{prompt}}, or {{a}} {{b}})")
        if self.fields and self.name != "file":
            raise ValueError(f"`fields` is for `name: file`, not {self.name!r}")
        if self.config and self.name != "reasoning_gym":
            raise ValueError(f"`config` is for `name: reasoning_gym`, not {self.name!r}")
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) > max_digits ({self.max_digits})")
        operands = sum(10 if d == 1 else 9 * 10 ** (d - 1) for d in range(self.min_digits, self.max_digits + 1))
        if self.name == "arithmetic" and self.pool_size + self.eval_size > operands**2:
            raise ValueError(f"pool_size + eval_size ({self.pool_size + self.eval_size:,}) > the {operands**2:,} "
                             f"distinct problems {self.min_digits}-{self.max_digits} digit operands make; lower "
                             "pool_size/eval_size or raise max_digits")
        return self


def template_problem(template: str, task: str) -> str | None:
    """Why `template` cannot make a prompt for `task` (None: it can): every field is one the task fills
    ({prompt}; {a} {b} for arithmetic), named plainly (no attribute, index or position), and it formats."""
    import string

    names = ("prompt", "a", "b") if task == "arithmetic" else ("prompt",)
    allowed = ", ".join(f"{{{n}}}" for n in names)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        return f"is not a format string ({e}); write a literal brace as {{{{ or }}}}"
    for field in fields:
        if field not in names:
            return f"uses {{{field}}}; a template may use only {allowed} (a literal brace is {{{{ or }}}})"
    try:
        template.format(prompt="1+2=", a=1, b=2)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        return f"cannot be filled ({type(e).__name__}: {e})"
    return None


class BaseParams(_Section):
    """The embedded base model: a tiny Llama trained from scratch, deliberately short."""

    hidden_size: int = Field(128, ge=8)
    intermediate_size: int = Field(512, ge=8)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    steps: int = Field(350, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0, le=1)
    warmup_steps: int = Field(30, ge=0)
    hint_fraction: float = Field(
        0.0, ge=0, le=1, description="share of pretraining prompts carrying the answer as a hint (STaR rationalization)"
    )
    propose_fraction: float = Field(
        0.0, ge=0, le=1, allow_inf_nan=False, description="share of pretraining examples that teach the tiny base to "
        "write a question after the marker `?` (self-play's proposer starts from it; an LLM would get an instruction)"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide(self) -> BaseParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
        return self
