"""Set this round's sampling before it generates (`controller` params; the recipe picks the kind).

`none` writes only its kind. `sec` updates the curriculum's Q with the last round's arm rewards
(carried in data/state/controller.jsonl) and writes the category probabilities generate draws
by. `bstar` samples a dev subset of the pool with the current policy at
each candidate temperature, scores it with the round's verifier, and picks the temperature and
reward threshold with the best B-STaR balance score (sharpen/curriculum.py); generate and filter
read the choice from metrics.json. The choice is committed with the round (and copied into the
loop state by `sharpen advance`), so a resumed loop knows every earlier choice. Each kind imports
its own modules: `none` reads its params and writes two small files without polars, pandera or a backend.

Run: `python -m stages.controller --problems data/tasks/pool.parquet --state data/state \
        --base data/base/model --out data/round/controller`
"""

import argparse
from pathlib import Path

from sharpen.io import atomic_write, hash_path, read_frame, write_csv, write_json
from sharpen.config import load_params
from sharpen.params import Params
from sharpen.stage import Timer, progress, run_stage
from sharpen.rounds.state import check_loop_identity, controller_history, current_policy_dir, round_pool

GRID = ("temperature", "tau", "balance")  # grid.csv's header: all of it when nothing is searched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    params = load_params()
    c = params.controller
    timer = Timer()
    policy = current_policy_dir(args.state, args.base)  # the first stage of a round checks the loop state
    check_loop_identity(params, args.state)
    if c.kind == "none":
        write_empty_grid(args.out / "grid.csv")
        write_json({"round": params.round, "kind": "none", "wall_s": timer.seconds}, args.out / "metrics.json")
        print("controller: none (the recipe's sampling params stand)")
    elif c.kind == "sec":
        sec(params, problems=args.problems, state=args.state, out=args.out, timer=timer)
    else:
        bstar(params, problems=args.problems, state=args.state, policy=policy, out=args.out, timer=timer)


def write_empty_grid(path: Path) -> None:
    """grid.csv with its header only (what polars writes for an empty frame of GRID)."""
    atomic_write(path, lambda tmp: tmp.write_text(",".join(GRID) + "\n", encoding="utf-8"))


def sec(params: Params, *, problems: Path, state: Path, out: Path, timer: Timer) -> None:
    """SEC: update the curriculum's Q with the last round's arm rewards; write the category probabilities."""
    from sharpen.curriculum import sec_probabilities, sec_update
    from sharpen.schemas import Problem

    c = params.controller
    write_empty_grid(out / "grid.csv")
    pool = round_pool(read_frame(problems, Problem), state)
    earlier = [h for h in controller_history(state) if h.get("kind") == "sec" and h["round"] < params.round]
    last = earlier[-1] if earlier else {}
    q = {category: 0.0 for category in sorted(set(pool["category"]))} | last.get("q", {})
    q = sec_update(q, last.get("arm_rewards", {}), c.sec.alpha)
    probabilities = sec_probabilities(q, c.sec.tau)
    write_json({"round": params.round, "kind": "sec", "q": q, "probabilities": probabilities,
                "updated_from_round": last.get("round"), "arm_rewards_used": last.get("arm_rewards", {}),
                "wall_s": timer.seconds}, out / "metrics.json")
    top = sorted(probabilities.items(), key=lambda kv: -kv[1])[:3]
    print(f"controller: sec over {len(q)} categories; most likely "
          + ", ".join(f"{cat} {p:.0%}" for cat, p in top)
          + (f" (Q updated from round {last['round']})" if last else " (uniform: no earlier round)"))


def bstar(params: Params, *, problems: Path, state: Path, policy: Path, out: Path, timer: Timer) -> None:
    """B-STaR: sample a dev subset at each candidate temperature; write the balance grid and its best cell."""
    import polars as pl

    from sharpen.backends import load_backend
    from sharpen.curriculum import balance_grid, choose, exploration
    from sharpen.sampling import derive_seed, sample_frame, select_problems
    from sharpen.schemas import Problem
    from sharpen.verifiers import verify_frame

    b, g = params.controller.bstar, params.generate
    policy_hash = hash_path(policy)
    pool = round_pool(read_frame(problems, Problem), state)
    dev = select_problems(pool, b.dev_size, derive_seed(params.seed, "controller"), params.round)
    backend = load_backend(g.backend, policy, batch_size=g.batch_size, chat=params.task.chat,
                           tensor_parallel_size=g.tensor_parallel_size, autocast=g.autocast, server=g.server)
    bar = progress(dev.height * b.k * len(b.temperatures), f"controller: b-star search, round {params.round}", "sample")
    frames = []
    for temperature in b.temperatures:
        completions = backend.generate(
            dev["prompt"].to_list(), n=b.k, temperature=temperature, top_p=g.top_p, max_new_tokens=g.max_new_tokens,
            seed=derive_seed(params.seed, params.round, "controller", temperature), on_progress=bar.update,
        )
        samples = sample_frame(dev, completions, round_=params.round, policy_hash=policy_hash, temperature=temperature)
        verdicts = verify_frame(samples, dev, params.verify.verifier, labels=params.verify.labels,
                                answer_form=params.verify.answer_form)
        frames.append(verdicts.with_columns(temperature=pl.lit(float(temperature))))
    bar.close()
    dev_verdicts = pl.concat(frames)
    grid = balance_grid(dev_verdicts, tau_step=b.tau_step, n_star=b.n_star)
    choice = choose(grid)
    write_csv(grid, out / "grid.csv")
    write_json(
        {
            "round": params.round,
            "kind": "bstar",
            **choice,
            "exploration": exploration(dev_verdicts, choice["temperature"]),
            "exploitation": {"precision": choice["precision"]},
            "dev_problems": dev.height,
            "samples": dev_verdicts.height,
            "policy_hash": policy_hash,
            "wall_s": timer.seconds,
        },
        out / "metrics.json",
    )
    print(f"controller: b-star chose temperature {choice['temperature']} and tau {choice['tau']} "
          f"(balance {choice['balance']:.3f}, precision {choice['precision']:.3f}) in {timer.seconds:.0f}s")


if __name__ == "__main__":
    run_stage(main)
