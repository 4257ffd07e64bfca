"""The gate between rounds: whether round N's policy replaces the current one.

`advance.gate` is `accept`, or `no_regression` on `advance.metric` within `advance.tolerance`.
Two rules reject a round whatever the gate says: form hacking (strict greedy accuracy fell while
the form-blind one rose) and collapse (self-consistency rose while the greedy answers lost
variety; `advance.reject_collapse`, and the loop stops there).

Run: `sharpen advance` gates the finished round (sharpen/rounds/advance.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sharpen.rounds.state import AdvanceError


@dataclass
class Gate:
    accepted: bool
    value: float | None
    previous: float | None
    reason: str
    collapsed: bool = False  # rejected by the label-free collapse rule: the loop stops


MONITORS = ("self_consistency", "greedy_distinct_share")


def collapse(new: dict, previous: dict | None, rule) -> str | None:
    """Why a round looks collapsed by the label-free rule (`advance.reject_collapse`, CollapseParams):
    self-consistency rose while the greedy answers lost variety across problems."""
    if rule is None or not previous or not all(k in new and k in previous for k in MONITORS):
        return None
    rise = float(new["self_consistency"]) - float(previous["self_consistency"])
    before, after = float(previous["greedy_distinct_share"]), float(new["greedy_distinct_share"])
    drop = (before - after) / before if before > 0 else 0.0
    if rise > rule.consistency_rise and drop > rule.distinct_drop:
        return (f"collapse: self_consistency rose {rise:+.3f} (> {rule.consistency_rise}) while greedy_distinct_share "
                f"fell {drop:.1%} (> {rule.distinct_drop:.0%}); the policy answers more alike and less by the question "
                "(label-free rule, advance.reject_collapse)")
    return None


def form_hacking(new: dict, previous: dict | None) -> str | None:
    """Why a round looks like reward hacking: strict greedy accuracy fell while the form-blind one rose."""
    keys = ("greedy_accuracy", "greedy_lenient_accuracy")
    if not previous or not all(k in new and k in previous for k in keys):
        return None
    strict, lenient = (float(new[k]) - float(previous[k]) for k in keys)
    if strict < 0 < lenient:
        return (f"greedy_accuracy fell {-strict:.4f} while greedy_lenient_accuracy rose {lenient:.4f}: the policy is "
                f"learning answers only a form-blind reward pays for (greedy_form_hack_share {float(new.get('greedy_form_hack_share', 0)):.3f})")
    return None


def gate(rule: str, metric: str, tolerance: float, new: dict, previous: dict | None, reject_form_hacking: bool = True,
         collapse_rule=None) -> Gate:
    """`accept`: always. `no_regression`: new[metric] >= previous[metric] - tolerance. Either way,
    with `reject_form_hacking`, a round whose strict accuracy falls while the lenient one rises is rejected,
    and with `collapse_rule` (CollapseParams) one that collapses by the label-free rule."""
    if why := collapse(new, previous, collapse_rule):
        prev = float(previous[metric]) if previous and metric in previous else None
        return Gate(False, float(new[metric]) if metric in new else None, prev, why, collapsed=True)
    if reject_form_hacking and (why := form_hacking(new, previous)):
        prev = float(previous[metric]) if previous and metric in previous else None
        return Gate(False, float(new[metric]) if metric in new else None, prev, why)
    if metric not in new:
        raise AdvanceError(f"advance.metric: {metric!r} is not in the round's metrics; allowed: {', '.join(sorted(new))}")
    value = float(new[metric])
    prev = float(previous[metric]) if previous and metric in previous else None
    if rule == "accept":
        return Gate(True, value, prev, "gate 'accept' promotes every round")
    if prev is None:
        return Gate(True, value, prev, f"no previous {metric} to compare against")
    if value >= prev - tolerance:
        return Gate(True, value, prev, f"{metric} {value:.4f} >= {prev:.4f} - {tolerance}")
    return Gate(False, value, prev, f"{metric} {value:.4f} < {prev:.4f} - {tolerance}: regression")
