"""Training objectives of the `train` stage, chosen by `train.objective`.

- `sft` (sharpen/objectives/sft.py): TRL's SFTTrainer on the kept samples (ReST-EM, STaR, ...);
- `dpo` (sharpen/objectives/dpo.py): TRL's DPOTrainer on the preference pairs the filter built
  (`filter.pairs`: iterative reasoning preference optimisation);
- `grpo` (sharpen/objectives/grpo.py): TRL's GRPOTrainer, online, the round's verifier as the reward;
- `grpo` with `rollouts: round`: the same trainer on the groups generate sampled and verify scored.

All train full weights or a LoRA adapter and resume from their last checkpoint after a kill, through
one resumable trainer (sharpen/objectives/trainer.py) and one settings value (`TrainerSettings`).
The train stage picks the objective from `OBJECTIVES` (sharpen/objectives/table.py).
"""
