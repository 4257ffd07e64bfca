"""Training objectives of the `train` stage, chosen by `train.objective`.

- `sft` (sharpen/objectives/sft.py): TRL's SFTTrainer on the kept samples (ReST-EM, STaR, ...);
- `dpo` (sharpen/objectives/dpo.py): TRL's DPOTrainer on the preference pairs the filter built
  (`filter.pairs`: iterative reasoning preference optimisation);
- `grpo` (sharpen/objectives/grpo.py): TRL's GRPOTrainer, online, the round's verifier as the reward.

All train full weights or a LoRA adapter, resume from their last checkpoint after a kill, and
share the checkpoint and LoRA helpers of sft.py.
"""
