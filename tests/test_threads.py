"""Torch threads per stage (sharpen/threads.py): the CPUs this process may use (affinity, cgroup quota),
less those other work keeps busy, split among the workers running side by side; SHARPEN_THREADS overrides.

Run: `pytest tests/test_threads.py`
"""

import pytest

from sharpen import threads
from sharpen.threads import THREADS_ENV, WORKERS_ENV, ThreadsError, threads_for


def test_an_idle_machine_gets_a_thread_per_cpu():
    assert threads_for(8) == 8


def test_the_cgroup_quota_caps_the_cpus_affinity_shows():
    assert threads_for(64, quota=2.0) == 2
    assert threads_for(64, quota=1.5) == 2  # a part CPU rounds up


def test_workers_side_by_side_share_the_cpus():
    assert threads_for(8, workers=4) == 2
    assert threads_for(8, quota=4.0, workers=2) == 2


def test_cpus_busy_with_other_work_are_left_to_it():
    assert threads_for(2, busy=2) == 1  # a busy loop per core: one thread, not two stalling each other
    assert threads_for(16, busy=3) == 13
    assert threads_for(16, workers=2, busy=3) == 8


def test_there_is_always_one_thread():
    assert threads_for(2, workers=8, busy=10) == 1


def test_the_override_wins():
    assert threads_for(2, busy=2, override=4) == 4
    assert threads.torch_threads({THREADS_ENV: "3", WORKERS_ENV: "8"}) == 3


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_override_is_refused_naming_it(value):
    with pytest.raises(ThreadsError, match=THREADS_ENV):
        threads.torch_threads({THREADS_ENV: value})


def test_workers_come_from_the_parent_else_pytest_xdist():
    assert threads.workers({}) == 1
    assert threads.workers({"PYTEST_XDIST_WORKER_COUNT": "2"}) == 2
    assert threads.workers({WORKERS_ENV: "3", "PYTEST_XDIST_WORKER_COUNT": "2"}) == 3


def test_children_side_by_side_are_counted_as_workers():
    assert threads.child_env(2, {})[WORKERS_ENV] == "2"
    assert threads.child_env(2, {"PYTEST_XDIST_WORKER_COUNT": "2"})[WORKERS_ENV] == "4"


def test_compare_jobs_split_the_cpus_among_their_runs(monkeypatch):
    from sharpen.compare import _env

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    env = _env(3)
    assert env[WORKERS_ENV] == "3"


@pytest.mark.parametrize(("text", "cpus"), [("200000 100000\n", 2.0), ("50000 100000\n", 0.5), ("max 100000\n", None)])
def test_the_cgroup_v2_quota_is_read(tmp_path, text, cpus):
    (tmp_path / "cpu.max").write_text(text)
    assert threads.cgroup_quota(tmp_path) == cpus


def test_no_cgroup_file_is_no_quota(tmp_path):
    assert threads.cgroup_quota(tmp_path) is None


def test_the_cgroup_v1_quota_is_read(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu/cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu/cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_quota(tmp_path) == 3.0


def test_busy_counts_other_runnable_tasks_not_this_one(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 4)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("2.91 1.16 0.44 3/203 30359\n")
    assert threads.busy_cpus(reads=2, gap_s=0, loadavg=loadavg) == 2  # 3 runnable, one of them this process


def test_a_stage_applies_the_thread_count_to_torch(tmp_path, monkeypatch):
    import torch

    from sharpen.stage import run_stage

    before = torch.get_num_threads()
    monkeypatch.chdir(tmp_path)  # no workspace: the stage's workspace checks have nothing to check
    monkeypatch.setenv(THREADS_ENV, "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    seen = {}

    def main():
        import os

        seen.update(torch=torch.get_num_threads(), omp=os.environ["OMP_NUM_THREADS"])

    try:
        run_stage(main)
    finally:
        torch.set_num_threads(before)
    assert seen == {"torch": 1, "omp": "1"}


def test_torchrun_processes_split_the_cpus(monkeypatch):
    from sharpen.objectives import processes

    seen = {}
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.setattr(processes, "check_processes", lambda n: None)
    monkeypatch.setattr(processes.subprocess, "run", lambda cmd, env: seen.update(env) or type("P", (), {"returncode": 0}))
    processes.relaunch(2, "stages.train", [])
    assert seen[WORKERS_ENV] == "2"


def test_the_thread_count_does_not_change_what_the_embedded_model_computes():
    import torch

    from sharpen import tiny_lm

    def trained(n: int) -> list:
        torch.set_num_threads(n)
        tok = tiny_lm.build_tokenizer()
        model = tiny_lm.build_model(tok, hidden_size=64, intermediate_size=256, num_layers=2, num_heads=2, seed=0)
        ids, mask, labels = tiny_lm.encode_batch(tok, [(f"{a}+{a}=", str(2 * a)) for a in range(100, 132)])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(2):
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            opt.step()
            opt.zero_grad()
        return [p.detach().clone() for p in model.parameters()]

    before = torch.get_num_threads()
    try:
        one, two = trained(1), trained(2)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))  # so a busy machine's choice changes no result
