"""The pipeline's `data/` layout, stated once in Python: the paths the code between rounds reads.

dvc.yaml declares the same paths for DVC, and each stage gets its own as command-line arguments,
so stages never name them. tests/test_layout.py fails when a path here is not one dvc.yaml
declares, or when the stage lists differ from dvc.yaml's.

Run: `python -c "from sharpen.rounds import layout; print(layout.ROUND_METRICS)"`
"""

from __future__ import annotations

from pathlib import Path

SETUP_STAGES = ("resolve", "tasks", "base", "evaluate_base")  # run once; their outputs are round 0
STAGES = ("controller", "propose", "generate", "verify", "filter", "synthesize", "train", "train_proposer", "evaluate")

# params.yaml with its recipe laid under it, one file per section (sharpen.config.RESOLVED_SECTIONS):
# stages depend on the sections they read, not on the recipe's name
RESOLVED_DIR = Path("data/resolved")

# round 0: the base model and its held-out baseline
BASE_MODEL = Path("data/base/model")
BASE_METRICS = Path("data/base/metrics.json")  # the base stage's: model hash, size, wall time
BASE_EVAL_METRICS = Path("data/base/evaluate/metrics.json")  # the base model's held-out accuracy
BASE_CATEGORIES = Path("data/base/evaluate/categories.csv")
BASE_EVAL_SAMPLES = Path("data/base/evaluate/samples.parquet")  # the base model's held-out answers (EvalSample)
EVAL_PROBLEMS = Path("data/tasks/eval.parquet")  # the held-out problems: prompts and gold answers (Problem)

# the loop-carried state: git tracks it, only `sharpen advance` (and `new-loop`) changes it
STATE_DIR = Path("data/state")
STATE_FILE = "state.json"  # LoopState
LEDGER = "ledger.parquet"  # per-problem pass rate of every round (LedgerRow)
SYNTHETIC = "problems.parquet"  # problems synthesized and admitted by earlier rounds (Problem)
CONTROLLER = "controller.jsonl"  # every round's controller output
PAIRS = "pairs.parquet"  # the last round's own preference pairs (PreferencePair; filter.pairs.mix_previous)
BUFFER = "buffer.parquet"  # self-play: every round's accepted proposals (Proposal), with their solver rate
STATE_FILES = (STATE_FILE, LEDGER, SYNTHETIC, CONTROLLER, PAIRS, BUFFER)

# the current round: data/round/<stage>/
_ROUND = Path("data/round")


def stage_metrics(stage: str) -> Path:
    """A round stage's metrics.json (`cache: false`, so git holds it at the round's tag)."""
    return _ROUND / stage / "metrics.json"


ROUND_CONTROLLER = stage_metrics("controller")  # the controller's choice for the round
ROUND_STATS = _ROUND / "filter/stats.parquet"  # per-problem pass rates (ProblemStats)
ROUND_PAIRS = _ROUND / "filter/pairs.parquet"
ROUND_SYNTHESIZED = _ROUND / "synthesize/problems.parquet"
ROUND_MODEL = _ROUND / "train/model"  # the round's policy
ROUND_LOSS = _ROUND / "train/loss.csv"
ROUND_PROPOSER = _ROUND / "train_proposer/model"  # self-play: the proposer's next policy
ROUND_PROPOSALS = _ROUND / "train_proposer/proposals.parquet"
ROUND_METRICS = stage_metrics("evaluate")  # held-out metrics: the gate reads them
ROUND_EVAL_SAMPLES = _ROUND / "evaluate/samples.parquet"
# what the round sampled, how the verifier judged it and what the filter kept (the report's sample browser)
ROUND_PROBLEMS = _ROUND / "generate/problems.parquet"
ROUND_SAMPLES = _ROUND / "generate/samples.parquet"
ROUND_VERDICTS = _ROUND / "verify/verdicts.parquet"
ROUND_DECISIONS = _ROUND / "filter/decisions.parquet"
ROUND_CATEGORIES = _ROUND / "evaluate/categories.csv"
