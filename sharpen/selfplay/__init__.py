"""Self-play roles: a proposer writes the round's problems, the solver (the loop's policy) answers them.

The proposer is a second policy in the loop state (`data/state/proposer`, from the base until
`sharpen advance` first promotes it). Its stages are ordinary stages of the same round:

    propose          the proposer samples questions; each is parsed and validated (`proposals`,
                     Absolute Zero's by execution in the sandbox: `execution`)
    generate/verify  the solver answers each valid question m (= generate.k) times, as for any problem
    filter/train     the solver learns from what the filter keeps, as for any problem
    train_proposer   the proposer's rewards (`rewards`) from the solver's answers; GRPO on its own groups

Methods (R-Zero, Absolute Zero) are recipes over these stages, chosen by `propose.kind`.
"""
