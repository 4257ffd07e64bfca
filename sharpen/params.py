"""Typed, validated params: `params.yaml` → frozen pydantic models, one per stage section.

Every section is validated whenever any stage loads params, so an unknown key, a wrong type or
an out-of-range value anywhere stops the run before work starts, with an error naming the key
and the allowed values. This module is the schema only; reading params.yaml and laying the recipe
under it is sharpen/config.py. Check a file by hand with `sharpen params` (or `sharpen params other.yaml`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sharpen.errors import SharpenError


def _takes_number_not_bool(annotation) -> bool:
    options = get_args(annotation) or (annotation,)
    return bool not in options and any(o in (int, float) for o in options)


def _takes_bool(annotation) -> bool:
    options = get_args(annotation) or (annotation,)
    return bool in options and not any(o in (int, float, str) for o in options)


class ParamsError(SharpenError, ValueError):
    """params.yaml is missing, unreadable or invalid; the message names the file and key."""


class _Section(BaseModel):
    # every float finite (inf and nan are errors, not a NaN model or an endless loop)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, data):
        """pydantic would take `true` as the number 1, and the string 'off' as false. In YAML 1.2 (DVC's
        reading, and ours) only true/false are booleans, so a switch takes exactly those."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is None:
                    continue
                if isinstance(value, bool) and _takes_number_not_bool(field.annotation):
                    raise ValueError(f"{name}: expected a number, got {value!r}")
                if _takes_bool(field.annotation) and not isinstance(value, bool) and value is not None:
                    raise ValueError(f"{name}: expected true or false, got {value!r} (YAML 1.2, which DVC and "
                                     f"sharpen read, has no yes/no/on/off booleans)")
        return data


class TaskParams(_Section):
    """The problem source: `arithmetic` (the embedded default: integer addition), `file` (the
    user's JSONL/Parquet under data/problems/, see sharpen/tasks/files.py) or `humaneval`."""

    name: Literal["arithmetic", "file", "humaneval", "reasoning_gym"] = "arithmetic"
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

    @model_validator(mode="after")
    def _digits_ordered(self) -> TaskParams:
        if self.name == "file" and self.path is None:
            raise ValueError("`name: file` needs `path` (a .jsonl or .parquet file under data/problems/)")
        if self.name != "file" and (self.path, self.eval_path) != (None, None):
            raise ValueError(f"path/eval_path are for `name: file`, not {self.name!r}")
        if (self.name == "reasoning_gym") != (self.dataset is not None):
            raise ValueError("`dataset` is needed by, and only by, `name: reasoning_gym`")
        if "{prompt}" not in self.template and not (self.name == "arithmetic" and "{a}" in self.template):
            raise ValueError(f"template: {self.template!r} does not place the problem ({{prompt}}, or {{a}} {{b}})")
        if self.fields and self.name != "file":
            raise ValueError(f"`fields` is for `name: file`, not {self.name!r}")
        if self.config and self.name != "reasoning_gym":
            raise ValueError(f"`config` is for `name: reasoning_gym`, not {self.name!r}")
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) > max_digits ({self.max_digits})")
        return self


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


SERVER_BACKENDS = ("openai", "vllm-server")  # sampling through an OpenAI-compatible API


class ServerParams(_Section):
    """backend openai (servers a user runs) and vllm-server (engines the stage starts): the
    OpenAI-compatible `/v1/completions` API (sharpen/backends/openai.py, sharpen/backends/server.py)."""

    endpoints: tuple[str, ...] = Field((), description="openai: server URLs, e.g. http://gpu-1:8000/v1; prompts "
                                       "are spread over them, and a sample never depends on which one answered")
    model: str = Field("policy", min_length=1, description="the name every endpoint must list in /v1/models; policy: "
                       "sharpen-<first 12 of the policy's hash>, the name vllm-server serves it under")
    concurrency: int = Field(8, ge=1, le=4096, description="requests in flight over all endpoints")
    retries: int = Field(3, ge=0, le=100, description="tries after the first on a transient failure (connection, "
                         "timeout, HTTP 429/5xx), each on the next endpoint, with exponential backoff")
    timeout_s: float = Field(600.0, gt=0, allow_inf_nan=False, description="per request")
    api_key_env: str = Field("", description="the environment variable holding the servers' API key (never the key)")
    replicas: int = Field(1, ge=1, le=64, description="vllm-server: engines started (one per GPU, or CPU cores split)")
    vllm_env: str = Field(".venv-vllm", min_length=1, description="vllm-server: the vLLM environment (`make vllm`)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="vllm-server: the engines' weights and activations (vLLM's --dtype); on a CPU without "
        "native bf16 (no avx512_bf16/amx), float32 is faster")
    start_timeout_s: float = Field(900.0, gt=0, allow_inf_nan=False, description="vllm-server: wait for an engine")


class SamplingParams(_Section):
    backend: Literal["hf", "vllm", "openai", "vllm-server"] = Field(
        "hf", description="hf: transformers in the stage | vllm: vLLM's offline engine in the stage's environment | "
        "openai: OpenAI-compatible servers at server.endpoints | vllm-server: `vllm serve` from server.vllm_env, "
        "started and stopped by the stage")
    server: ServerParams = ServerParams()

    @model_validator(mode="after")
    def _server_fits(self) -> SamplingParams:
        if self.backend == "openai" and not self.server.endpoints:
            raise ValueError("server.endpoints: backend openai samples from servers you run; list their URLs, "
                             "e.g. [http://localhost:8000/v1] (or use backend vllm-server to start vLLM here)")
        for url in self.server.endpoints:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"server.endpoints: {url!r} is not an http(s) URL")
        return self
    k: int = Field(8, ge=1, le=1024, description="samples per problem")
    temperature: float = Field(1.0, ge=0, le=10, description="0 means greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(8, ge=1)
    batch_size: int = Field(128, ge=1, description="prompts per forward batch (each expanded to k sequences)")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs one engine shards the model over")
    autocast: Literal["none", "bfloat16", "auto"] = Field(
        "none", description="hf: run generation under bf16 autocast | auto: only on a GPU or a CPU with native bf16 "
        "(avx512_bf16 or amx_bf16; without them bf16 is slower here, BENCHMARKS.md)")


class RayParams(_Section):
    """A stage's shards (generate's; evaluate's greedy and sampled ones) fanned out over a Ray cluster
    (sharpen/backends/fanout.py); the samples equal the stage's own process's."""

    address: str = Field("", description="the cluster (`ray start --head` prints it, e.g. 10.0.0.1:6379; auto: the "
                         "one this machine belongs to); empty: generate in the stage's own process")
    workers: int = Field(2, ge=1, le=4096, description="generation actors, each loading the policy; Ray spreads "
                         "them over the nodes")
    cpus_per_worker: float = Field(1.0, ge=0, allow_inf_nan=False)
    gpus_per_worker: float = Field(0.0, ge=0, allow_inf_nan=False)


class GenerateParams(SamplingParams):
    ray: RayParams = RayParams()
    problems_per_round: int = Field(0, ge=0, description="problems sampled from the pool each round; 0 = all")
    shard_size: int = Field(512, ge=1, description="problems per resumable shard")
    logprobs: bool = Field(False, description="record each sample's token ids and per-token log-probabilities under "
                           "the sampling policy (train.grpo.rollouts: round trains on them)")

    @model_validator(mode="after")
    def _logprobs_from_a_backend_that_has_them(self) -> GenerateParams:
        if self.logprobs and self.backend in SERVER_BACKENDS:
            raise ValueError(f"logprobs: backend {self.backend} does not take log-probabilities from a server; "
                             "use backend hf or vllm")
        return self


class JudgeParams(_Section):
    """`labels: judge`: the policy scores its own samples with a rubric (sharpen/judge.py)."""

    rubric: Literal["additive5"] = "additive5"
    threshold: int = Field(4, ge=1, le=5, description="a sample is correct when the judge gives it at least this")
    max_new_tokens: int = Field(64, ge=1)


class VerifyParams(_Section):
    """How samples are scored. `labels: majority` (TTRL) scores against each problem's majority
    answer over its k samples instead of the gold answer, which the round then never reads;
    `labels: judge` has the policy score its own samples (Self-Rewarding)."""

    verifier: Literal["exact_integer", "math_equiv", "unit_tests", "reasoning_gym"] = "exact_integer"
    labels: Literal["gold", "majority", "judge"] = "gold"
    answer_form: Literal["auto", "integer", "number", "expression", "latex"] = Field(
        "auto", description="math_equiv: the form an answer must take; auto = integer/number where the gold is one"
    )
    judge: JudgeParams = JudgeParams()
    reward_control: Literal["none", "random", "format_only"] = Field(
        "none", description="train on a control reward (sharpen/verifiers/controls.py): random (a coin flip at the "
        "observed pass rate) | format_only (an answer in the required form, whatever its value); held-out "
        "evaluation is never controlled. The no-verifier control is filter.select: all")

    @model_validator(mode="after")
    def _control_has_verdicts(self) -> VerifyParams:
        if self.reward_control != "none" and self.labels == "judge":
            raise ValueError("reward_control: a control replaces a verifier's verdicts; labels: judge has none "
                             "(use labels gold or majority)")
        return self


class GroupBand(_Section):
    """Keep problems whose pass rate over their k samples lies in [lo, hi] (DAPO, MASA, ReST-GRPO)."""

    rule: Literal["group_band"]
    lo: float = Field(0.0, ge=0, le=1)
    hi: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> GroupBand:
        if self.lo >= self.hi:
            raise ValueError(f"lo ({self.lo}) must be below hi ({self.hi})")
        return self


class StdMin(_Section):
    """Keep problems whose reward std over their k samples exceeds eps (ReST-GRPO: 0.05)."""

    rule: Literal["std_min"]
    eps: float = Field(0.05, ge=0)


class DifficultyBand(GroupBand):
    """Keep problems whose accuracy in the last round that sampled them (the ledger) lies in
    [lo, hi]; problems the ledger has not seen are kept. Judged before this round's samples."""

    rule: Literal["difficulty_band"]  # type: ignore[assignment]


GroupRule = Annotated[Union[GroupBand, StdMin, DifficultyBand], Field(discriminator="rule")]


class PairParams(_Section):
    """Preference pairs for `train.objective: dpo`, each recorded with its rule and the scores behind it.
    - `correct_vs_incorrect`: a verified-correct sample against an incorrect one of the same problem
      (iterative reasoning preference optimisation);
    - `gold_vs_sample`: the gold completion against the policy's own sample (SPIN); samples the
      verifier finds correct agree with the gold and make no pair;
    - `judge_best_vs_worst`: the best-scored sample against the worst (Self-Rewarding); ties make
      no pair. `scores: judge` ranks by the self-judge (`verify.labels: judge`); `scores: verifier`
      by the verifier's reward, a labelled stand-in judge for models too small to follow a rubric."""

    rule: Literal["correct_vs_incorrect", "gold_vs_sample", "judge_best_vs_worst"] = "correct_vs_incorrect"
    max_per_problem: int = Field(1, ge=1, le=64, description="most pairs per problem (distinct completions)")
    scores: Literal["judge", "verifier"] = Field("judge", description="judge_best_vs_worst: what ranks the samples")
    mix_previous: bool = Field(False, description="also train on the previous round's pairs (SPIN: rounds t and t-1)")


class FilterParams(_Section):
    """Which samples teach. Problem rules (`groups`) run first, then the sample rule `select`:
    `correct` (ReST-EM), `threshold` (reward > tau; B-STaR), `all` (the no-verifier control).
    Repeats are dropped (`dedup`) and at most `cap` samples kept per problem, best reward first."""

    select: Literal["correct", "threshold", "all"] = "correct"
    tau: float | None = Field(None, ge=-1, le=1, description="threshold: keep reward > tau; null = the controller's")
    cap: int = Field(10, ge=1, description="most samples kept per problem")
    dedup: bool = Field(True, description="drop repeated completions of the same problem")
    groups: tuple[GroupRule, ...] = Field((), description="problem rules, applied in order before `select`")
    pairs: PairParams | None = Field(None, description="build DPO preference pairs (train.objective: dpo); null: none")


class RationalizeParams(_Section):
    """STaR: regenerate failed problems with the gold answer as a hint; keep rationales that reach it."""

    k: int = Field(1, ge=1, description="hinted samples per failed problem")
    temperature: float = Field(0.0, ge=0)
    max_new_tokens: int = Field(40, ge=1)


class WeaknessParams(_Section):
    """SwS: find weak problems in the ledger, synthesize new ones in their categories, admit by difficulty."""

    max_acc_below: float = Field(0.5, ge=0, le=1, description="weak if best accuracy over rounds < this")
    slope_max: float = Field(0.0, description="... and its accuracy trend slope (per round) <= this")
    budget: int = Field(256, ge=0, description="candidate problems per round, split by category failure ratio")
    k: int = Field(8, ge=1, description="samples per candidate to measure its difficulty under the policy")
    temperature: float = Field(1.0, ge=0)
    band: tuple[float, float] = Field((0.125, 0.875), description="admit candidates with pass rate in [lo, hi]")
    synthesizer: Literal["templated", "llm"] = "templated"

    @model_validator(mode="after")
    def _band_ordered(self) -> WeaknessParams:
        lo, hi = self.band
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"band {list(self.band)} must satisfy 0 <= lo <= hi <= 1")
        return self


class _MethodSection(_Section):
    """A section whose `kind` names the subsection holding that kind's parameters."""

    kind: str = "none"

    @model_validator(mode="after")
    def _kind_configured(self):
        if self.kind != "none" and getattr(self, self.kind) is None:
            raise ValueError(f"kind {self.kind!r} needs a `{self.kind}` subsection")
        return self


class SynthesizeParams(_MethodSection):
    """Extra training data made after the filter: none, STaR rationalization, or SwS problems."""

    kind: Literal["none", "rationalize", "weakness"] = "none"
    rationalize: RationalizeParams | None = None
    weakness: WeaknessParams | None = None


class BStarParams(_Section):
    """B-STaR: on a dev subset, pick the (temperature, tau) with the best mean balance score."""

    dev_size: int = Field(128, ge=1, description="pool problems sampled for the search")
    k: int = Field(16, ge=1, description="samples per dev problem and temperature")
    temperatures: tuple[float, ...] = Field((0.5, 0.75, 1.0, 1.25, 1.5), min_length=1)
    tau_step: float = Field(0.05, gt=0, le=1, description="taus swept over [-1, 1) in this step")
    n_star: int = Field(8, ge=1, description="correct samples per query that count as enough")


class SECParams(_Section):
    """SEC (self-evolving curriculum): a bandit over problem categories. Each round draws
    `generate.problems_per_round` problems, category by category from softmax(Q / tau); after the
    round, a category's reward is the mean |advantage| of its samples and Q <- (1 - alpha) Q + alpha r."""

    alpha: float = Field(0.5, gt=0, le=1, allow_inf_nan=False, description="learning rate of Q")
    tau: float = Field(0.5, gt=0, le=100, allow_inf_nan=False, description="softmax temperature over Q (paper: 0.2-1.0)")


class ControllerParams(_MethodSection):
    """Sets the next round's sampling before it generates: none, the B-STaR search, or the SEC curriculum."""

    kind: Literal["none", "bstar", "sec"] = "none"
    bstar: BStarParams | None = None
    sec: SECParams | None = None


class LoraParams(_Section):
    """LoRA via peft: the round's policy is an adapter over data/base/model."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] | Literal["all-linear"] = ("q_proj", "k_proj", "v_proj", "o_proj")


class DPOParams(_Section):
    """TRL's DPOTrainer: the sigmoid loss with temperature `beta`, plus `nll_weight` x the NLL of the
    chosen completion (iterative RPO's term; 0: plain DPO). The reference is the init policy."""

    beta: float = Field(0.1, ge=0, le=100, allow_inf_nan=False)
    nll_weight: float = Field(1.0, ge=0, le=100, allow_inf_nan=False)


class GRPOParams(_Section):
    """TRL's GRPOTrainer, online: `num_generations` completions per problem sampled by the policy being
    trained, rewarded by the round's verifier, for `steps` optimizer steps. DAPO's loss and clip-higher
    by default (Dr. GRPO: `loss_type: dr_grpo, scale_rewards: none`)."""

    rollouts: Literal["online", "round"] = Field(
        "online", description="online: the trainer samples; round: train on the groups generate sampled and verify "
        "scored, with the importance ratio against generate's recorded log-probabilities")
    steps: int = Field(20, ge=1, le=1_000_000, description="optimizer steps per round")
    num_generations: int = Field(8, ge=2, le=256, description="completions per problem (the group); divides train.batch_size")
    max_completion_length: int = Field(16, ge=1, le=65536, description="online: new tokens per completion (round: as generated)")
    temperature: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "dapo"
    beta: float = Field(0.0, ge=0, le=100, allow_inf_nan=False, description="KL to the reference (0: none loaded)")
    epsilon: float = Field(0.2, gt=0, lt=1, allow_inf_nan=False)
    epsilon_high: float | None = Field(0.28, gt=0, lt=10, allow_inf_nan=False, description="DAPO's clip-higher; null = epsilon")
    scale_rewards: Literal["group", "batch", "none"] = "group"
    mask_truncated_completions: bool = False
    num_iterations: int = Field(1, ge=1, le=64, description="updates per batch of groups (TRL's num_iterations; >1 "
                                "reuses each batch with the clipped ratio)")

    @model_validator(mode="after")
    def _clip_ordered(self) -> GRPOParams:
        if self.epsilon_high is not None and self.epsilon_high < self.epsilon:
            raise ValueError(f"epsilon_high ({self.epsilon_high}) < epsilon ({self.epsilon})")
        return self


class TrainParams(_Section):
    objective: Literal["sft", "dpo", "grpo"] = "sft"
    dpo: DPOParams | None = Field(None, description="objective dpo: its settings (null: the defaults)")
    grpo: GRPOParams | None = Field(None, description="objective grpo: its settings (null: the defaults)")
    lora: LoraParams | None = Field(None, description="null: full fine-tuning")
    init: Literal["base", "previous"] = "base"
    lr: float = Field(2e-4, gt=0, le=1)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="fraction of steps warming up the fresh optimizer")
    epochs: float = Field(3.0, gt=0, le=10_000)
    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(
        None, ge=8, description="tokens per training sequence (prompt + completion + EOS; a DPO pair's longer side); null: "
        "the longest example of the round, so nothing is cut; a value below the longest example is refused before "
        "training (sharpen/objectives/lengths.py)")
    seed: int = 0
    checkpoint_steps: int = Field(
        50, ge=0, description="save a resumable checkpoint every N optimizer steps (the last one is kept); "
        "a killed train resumes from it. 0: none, a killed train starts over")
    processes: int = Field(
        1, ge=1, le=1024, description="training processes on this machine (DDP under torchrun: one per GPU, or CPU "
        "processes on gloo); batch_size stays the global batch, split evenly (sharpen/objectives/processes.py)")

    @model_validator(mode="after")
    def _batch_splits(self) -> TrainParams:
        if self.batch_size % self.processes:
            raise ValueError(f"train.batch_size: {self.batch_size} is the global batch and must split evenly over "
                             f"train.processes ({self.processes})")
        if self.processes > 1 and self.objective == "grpo":
            raise ValueError("train.processes: objective grpo runs on one process so far (sft and dpo run on "
                             "several); set train.processes: 1")
        return self


# Each Absolute Zero task type's solver prompt (function-form programs) and the fields it must hold.
TASK_PROMPTS = {"deduction": ("question", ("{program}", "{call}")),
                "abduction": ("abduction_question", ("{program}", "{output}", "{entry_point}")),
                "induction": ("induction_question", ("{entry_point}", "{examples}"))}


class ProposeParams(_Section):
    """Self-play's proposer role (sharpen/selfplay): it writes the round's problems, the solver answers them
    generate.k times, and the proposer learns by GRPO on its own groups from what the solver did."""

    kind: Literal["none", "r-zero", "absolute-zero"] = Field(
        "none", description="none: problems come from the task's pool | r-zero: challenger, rewarded by the "
        "solver's uncertainty | absolute-zero: programs validated and labelled by execution")
    prompt: str = Field("?", min_length=1, description="what the proposer is given (the tiny base learnt `?` -> a "
                        "question, base.propose_fraction)")
    prompts: int = Field(16, ge=1, le=100_000, description="proposer prompts a round; each gets `group` proposals")
    examples: int = Field(3, ge=0, le=64, description="a prompt with `{examples}`: how many accepted tasks from "
                          "the buffer (data/state/buffer.parquet) it shows")
    group: int = Field(8, ge=2, le=256, description="proposals per prompt: the proposer's GRPO group")
    temperature: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    max_new_tokens: int = Field(12, ge=1, le=4096)
    repetition_threshold: float = Field(0.5, gt=0, le=1, allow_inf_nan=False,
                                        description="BLEU similarity at which two proposals share a repetition cluster")
    repetition_weight: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="weight of the repetition penalty (a proposal's cluster's "
        "share of the batch) in the proposer's reward; null: the paper's (r-zero 1, absolute-zero 0). With "
        "absolute-zero, > 0 penalises a batch that repeats one program even where the solver's rate is 0 or 1")
    seed_examples: tuple[str, ...] = Field(
        (), description="tasks a prompt's `{examples}` may show besides the buffer's (the paper's seed buffer): "
        "questions in the proposer's own format (absolute-zero, program function: a program with its calls); each "
        "is checked like a proposal when the round proposes")
    program: Literal["expression", "function"] = Field(
        "expression", description="absolute-zero: what a program is. expression: one expression over integer "
        "literals, posed as `<program>=` (the tiny base) | function: definitions then one call with literal "
        "arguments on the last line, posed to the solver by `propose.question` (an LLM proposer)")
    question: str = Field(
        "What does `{call}` return?\n```python\n{program}```\nReply with only the number.", min_length=1,
        description="absolute-zero, program function: the solver's prompt; {program} (the definitions) and {call}")
    tasks: tuple[Literal["deduction", "abduction", "induction"], ...] = Field(
        ("deduction",), min_length=1, description="absolute-zero: the task types posed to the solver; slot i's "
        "proposals become tasks of type tasks[i % len(tasks)]. deduction: program + input -> output | abduction "
        "(program function): program + output -> an input | induction (program function, >= 2 calls): "
        "input/output pairs -> the program")
    abduction_question: str = Field(
        "Find an input for which this function returns {output}:\n```python\n{program}```\nReply with only the "
        "call, like `{entry_point}(...)`.", min_length=1,
        description="absolute-zero abduction: the solver's prompt; {program}, {output} and {entry_point}")
    induction_question: str = Field(
        "Write a Python function `{entry_point}` that gives these results:\n{examples}\nReply with only the "
        "function in a ```python block.", min_length=1,
        description="absolute-zero induction: the solver's prompt; {entry_point} and {examples} (the first half "
        "of the calls, `f(3) == 8` a line; the solver's function must give every call's value)")
    timeout_s: float = Field(2.0, gt=0, le=60, allow_inf_nan=False, description="absolute-zero: per program run")
    max_output_chars: int = Field(32, ge=1, le=4096, description="absolute-zero: longest gold output accepted")
    steps: int = Field(20, ge=1, le=1_000_000, description="the proposer's GRPO optimizer steps a round")
    lr: float = Field(2e-5, gt=0, le=1, allow_inf_nan=False)
    batch_size: int = Field(16, ge=2, le=100_000, description="proposals per optimizer step (whole groups)")


class EvaluateParams(SamplingParams):
    pass_k: tuple[int, ...] = Field((1, 8), description="k values reported as pass@k (each <= k)")
    shard_size: int = Field(0, ge=0, description="held-out problems per shard, each sampled with its own seed (0: one "
                            "shard); evaluate.ray sends the shards to a Ray cluster")
    ray: RayParams = RayParams()

    @model_validator(mode="after")
    def _pass_k_fit(self) -> EvaluateParams:
        if not self.pass_k or any(p < 1 or p > self.k for p in self.pass_k):
            raise ValueError(f"pass_k {list(self.pass_k)} must be non-empty values in [1, k={self.k}]")
        return self


class AdvanceParams(_Section):
    """The gate between rounds: `accept` promotes; `no_regression` compares `metric`; under either,
    `reject_form_hacking` rejects strict accuracy falling while a form-blind reward's rises."""

    gate: Literal["accept", "no_regression"] = "accept"
    metric: str = "greedy_accuracy"
    tolerance: float = Field(0.0, ge=0)
    reject_form_hacking: bool = Field(
        True, description="reject a round whose greedy accuracy falls while a form-blind reward's rises "
        "(the policy learning to restate questions); applies under either gate"
    )


class PlateauParams(_Section):
    """Stop when `metric` has not beaten its earlier best by more than `min_delta` for `patience` rounds."""

    metric: str = "greedy_accuracy"
    min_delta: float = Field(0.0, ge=0)
    patience: int = Field(2, ge=1)


class LoopParams(_Section):
    """The Prefect loop (`python -m flows.loop`): stopping rules, per-stage timeouts and retries."""

    max_rounds: int = Field(5, ge=1, description="rounds one loop run may advance (`--rounds` overrides)")
    plateau: PlateauParams | None = PlateauParams()
    budget_s: float | None = Field(None, gt=0, description="wall-clock budget; checked between rounds")
    on_reject: Literal["stop", "continue"] = Field(
        "continue", description="after a rejected gate: stop, or go on from the previous policy with a new seed"
    )
    stage_timeout_s: float | None = Field(3600, gt=0, description="kill a stage's process group after this")
    stage_retries: int = Field(1, ge=0, description="reruns of a failed stage (DVC skips what finished)")


class Params(_Section):
    round: int = Field(1, ge=1)
    seed: int = 0
    recipe: str = "rest-em"
    model: str = Field("tiny", description="tiny | a preset (smollm2-135m) | a directory | a .gguf file | a hub id")
    task: TaskParams = TaskParams()
    base: BaseParams = BaseParams()
    generate: GenerateParams = GenerateParams()
    verify: VerifyParams = VerifyParams()
    filter: FilterParams = FilterParams()
    synthesize: SynthesizeParams = SynthesizeParams()
    controller: ControllerParams = ControllerParams()
    propose: ProposeParams = ProposeParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    advance: AdvanceParams = AdvanceParams()
    loop: LoopParams = LoopParams()

    @field_validator("model")
    @classmethod
    def _model_known(cls, model: str) -> str:
        from sharpen.models import ModelError, describe

        try:
            describe(model)
        except ModelError as e:
            raise ValueError(str(e).removeprefix("model: ")) from None
        return model

    @model_validator(mode="after")
    def _task_fits(self) -> Params:
        if self.model == "tiny" and self.task.name == "humaneval":
            raise ValueError("task.name: `model: tiny` knows only addition; humaneval needs a pretrained model")
        if self.synthesize.kind != "none" and (self.task.name != "arithmetic" or self.task.template != "{prompt}"):
            raise ValueError(f"synthesize.kind: {self.synthesize.kind} (hinted prompts, templated problems) exists only "
                             "for the arithmetic task with its plain prompts so far")
        own = {"humaneval": "unit_tests", "reasoning_gym": "reasoning_gym"}  # tasks scored only one way
        task, verifier = self.task.name, self.verify.verifier
        if task in own and verifier != own[task]:
            raise ValueError(f"verify.verifier: task {task} is scored by {own[task]}, not {verifier}")
        if task == "arithmetic" and verifier in own.values():
            raise ValueError(f"verify.verifier: task arithmetic is scored by exact_integer or math_equiv, not {verifier}")
        return self

    @model_validator(mode="after")
    def _self_play_fits(self) -> Params:
        p = self.propose
        if p.kind == "none":
            return self
        if self.task.name != "arithmetic":
            raise ValueError(f"propose.kind: {p.kind} proposes problems for the arithmetic task only so far "
                             f"(task.name is {self.task.name})")
        if self.generate.backend in SERVER_BACKENDS:
            raise ValueError(f"generate.backend: self-play's proposer records its log-probabilities, which backend "
                             f"{self.generate.backend} does not take from a server; use hf or vllm")
        if self.generate.k < 2:
            raise ValueError(f"generate.k: self-play's solver answers each proposed question m = generate.k times, "
                             f"and m must be at least 2 (got {self.generate.k})")
        if p.program == "function" and p.kind != "absolute-zero":
            raise ValueError(f"propose.program: function is absolute-zero's program form; {p.kind} proposes additions")
        if p.program == "function":
            for key, fields in (TASK_PROMPTS[t] for t in p.tasks):
                for field in fields:
                    if field not in getattr(p, key):
                        raise ValueError(f"propose.{key}: must hold {field} (got {getattr(p, key)!r})")
        if len(set(p.tasks)) != len(p.tasks):
            raise ValueError(f"propose.tasks: each task type once (got {list(p.tasks)})")
        if p.tasks != ("deduction",) and (p.kind != "absolute-zero" or p.program != "function"):
            raise ValueError(f"propose.tasks: {', '.join(t for t in p.tasks if t != 'deduction')} need "
                             "propose.kind absolute-zero and propose.program function (a program with an input); "
                             f"{p.kind} with program {p.program} poses deduction only")
        if p.kind == "absolute-zero" and p.program == "expression" and self.task.template != "{prompt}":
            raise ValueError("task.template: absolute-zero's tasks are programs, posed as `<program>=`; "
                             f"the template {self.task.template!r} cannot hold them (use \"{{prompt}}\")")
        if p.batch_size % p.group:
            raise ValueError(f"propose.group: {p.group} must divide propose.batch_size ({p.batch_size})")
        want = {"r-zero": "majority", "absolute-zero": "gold"}[p.kind]
        if self.verify.labels != want:
            raise ValueError(f"verify.labels: {p.kind} labels the solver's answers by "
                             f"{'majority vote (it never reads the truth)' if want == 'majority' else 'the executor'}; "
                             f"set verify.labels: {want} (now {self.verify.labels})")
        if self.controller.kind != "none" or self.synthesize.kind != "none":
            raise ValueError("propose.kind: the proposer writes the round's problems; controller.kind and "
                             "synthesize.kind draw from the pool and must be none")
        return self

    @model_validator(mode="after")
    def _objective_has_its_data(self) -> Params:
        if self.train.objective == "dpo" and self.filter.pairs is None:
            raise ValueError("filter.pairs: `train.objective: dpo` trains on preference pairs; set filter.pairs "
                             "(e.g. {rule: correct_vs_incorrect}) or use `recipe: iterative-dpo`")
        pairs, labels = self.filter.pairs, self.verify.labels
        if pairs is not None and pairs.rule == "judge_best_vs_worst":
            if pairs.scores == "judge" and labels != "judge":
                raise ValueError(f"filter.pairs.scores: judge_best_vs_worst ranks by the self-judge's scores, but "
                                 f"verify.labels is {labels} (no judge runs); set verify.labels: judge, or "
                                 "filter.pairs.scores: verifier to rank by the verifier as a stand-in judge")
            if pairs.scores == "verifier" and labels != "gold":
                raise ValueError(f"filter.pairs.scores: verifier ranks by the verifier against gold answers, but "
                                 f"verify.labels is {labels}")
        if pairs is not None and pairs.rule == "gold_vs_sample" and labels != "gold":
            raise ValueError(f"filter.pairs.rule: gold_vs_sample pairs the gold completion with the policy's samples; "
                             f"it needs verify.labels: gold (now {labels})")
        if self.train.objective != "dpo" and self.train.dpo is not None:
            raise ValueError(f"train.dpo: settings for `objective: dpo`, but the objective is {self.train.objective}")
        if self.train.objective != "grpo" and self.train.grpo is not None:
            raise ValueError(f"train.grpo: settings for `objective: grpo`, but the objective is {self.train.objective}")
        if self.train.objective == "grpo":
            g = self.train.grpo or GRPOParams()
            if self.train.batch_size % g.num_generations:
                raise ValueError(f"train.grpo.num_generations: {g.num_generations} must divide train.batch_size "
                                 f"({self.train.batch_size}): each batch holds whole groups")
            if g.rollouts == "online" and self.verify.labels == "judge":
                raise ValueError("train.grpo.rollouts: online GRPO rewards with the verifier (gold or majority labels); "
                                 "self-judged rewards need `rollouts: round` (the judge scores generate's samples)")
            if g.rollouts == "round":
                gen = self.generate
                if not gen.logprobs:
                    raise ValueError("generate.logprobs: `train.grpo.rollouts: round` needs the sampling policy's "
                                     "log-probabilities; set generate.logprobs: true")
                if gen.k != g.num_generations:
                    raise ValueError(f"train.grpo.num_generations: {g.num_generations}, but generate.k is {gen.k}; "
                                     "`rollouts: round` trains on generate's groups, so they must be equal")
                if gen.temperature == 0 and self.controller.kind != "bstar":
                    raise ValueError("generate.temperature: `rollouts: round` learns from sampled groups; greedy "
                                     "decoding (0) gives k copies of one answer")
                if self.train.init != "previous":
                    raise ValueError("train.init: `rollouts: round` updates the policy that sampled the round; "
                                     "set train.init: previous")
        return self

    @model_validator(mode="after")
    def _curriculum_draws(self) -> Params:
        if self.controller.kind == "sec" and self.generate.problems_per_round == 0:
            raise ValueError("generate.problems_per_round: the sec controller chooses which problems a round samples; "
                             "set how many (e.g. 64), less than the pool")
        return self

    @model_validator(mode="after")
    def _threshold_has_tau(self) -> Params:
        if self.filter.select == "threshold" and self.filter.tau is None and self.controller.kind != "bstar":
            raise ValueError("filter.tau: `select: threshold` needs a tau (or the b-star controller to choose one)")
        return self
