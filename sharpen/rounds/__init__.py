"""What happens between rounds: the loop state, `advance`, git, lineage, the report, the loop's runner.

- `layout.py`: every `data/` path the code between rounds reads, stated once (dvc.yaml declares them)
- `state.py`: the loop state (`data/state/state.json`) and its readers; stages import only this, layout and lock
- `gate.py`: the gate rules (regression, form hacking, collapse)
- `git.py`: raw git and DVC calls, `sharpen checkout`
- `advance.py`: the two-commit advance transaction and `sharpen new-loop`
- `tags.py`: the round-N tags in git
- `lineage.py`, `diff.py`, `report.py`: `sharpen rounds | lineage | diff | report`, read from the round tags
- `runner.py`, `lock.py`, `stopping.py`, `remote.py`: what the loop flow (flows/loop.py) runs on

Layers, lowest first: layout, tags, state, gate, git, advance; lineage, diff and report read
layout, tags and the loop log (stopping.py). Nothing here imports stages/ or flows/ (tests/test_stage_deps.py).

Run: `sharpen advance`, `sharpen rounds`, `python -m flows.loop`.
"""
