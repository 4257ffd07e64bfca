"""The embedded base model: a character tokenizer and a ~1M-parameter Llama trained from scratch.

Both are saved as a standard Hugging Face model directory, so every later stage loads the
policy with `AutoModelForCausalLM` / `AutoTokenizer` from a path, exactly as it loads a real
model. Pretraining is deliberately short: the base model should be only partly right (strong
on 1-digit sums, weak on 3-digit), which leaves room for the loop to show what it does.

Run: `python -m stages.base --pretraining data/tasks/pretraining.json --out data/base` (DVC stage `base`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}


def build_tokenizer(extra: str = "") -> PreTrainedTokenizerFast:
    """One token per printable ASCII character, plus pad/bos/eos/unk; `extra` adds characters (the
    tests' `\\n` and `\\t`, for code), and then a newline is a character like any other."""
    vocab_list = list(SPECIAL_TOKENS.values()) + [chr(c) for c in range(32, 127)] + [c for c in dict.fromkeys(extra)]
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocab_list)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]" if extra else "."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)


def build_model(
    tokenizer, *, hidden_size: int, intermediate_size: int, num_layers: int, num_heads: int, seed: int,
    max_positions: int = 128,
) -> LlamaForCausalLM:
    """A freshly initialised Llama; the initial weights are determined by `seed`."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def encode_batch(tokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (input_ids, attention_mask, labels) for prompt+completion+eos; loss on the completion.

    Operands are random, so a loss on the prompt only adds noise; the model learns to answer.
    """
    ids = [tokenizer.encode(p + c, add_special_tokens=False) + [tokenizer.eos_token_id] for p, c in pairs]
    prompt_lens = [len(tokenizer.encode(p, add_special_tokens=False)) for p, _ in pairs]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    labels = input_ids.masked_fill(mask == 0, -100)
    for i, n in enumerate(prompt_lens):
        labels[i, :n] = -100
    return input_ids, mask, labels


def pretrain(
    model: LlamaForCausalLM,
    tokenizer,
    draw_batch: Callable[[random.Random, int], list[tuple[str, str]]],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    warmup_steps: int,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[dict]:
    """AdamW with linear warm-up and cosine decay to 10% of `lr`; returns the loss curve."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, steps - warmup_steps)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    curve = []
    start = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        input_ids, mask, labels = encode_batch(tokenizer, draw_batch(rng, batch_size))
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append({"step": step + 1, "loss": loss.item(), "lr": lr_at(step), "elapsed_s": time.perf_counter() - start})
        if on_step:
            on_step(step + 1, loss.item())
    model.eval()
    return curve


def save(model: LlamaForCausalLM, tokenizer, out_dir: Path) -> None:
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
