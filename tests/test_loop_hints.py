"""What the loop (flows/loop.py) tells the user when it stops: the command that finishes the rounds asked
for after Ctrl-C, and Prefect's temporary server retried on a loaded machine, then reported plainly.

Run: `pytest tests/test_loop_hints.py`
"""

import pytest

import flows.loop as loop_flow
from sharpen.errors import SharpenError

TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server."


def _stop(monkeypatch, capsys, **progress) -> str:
    """The line a loop stopped by Ctrl-C prints, with `progress` as the loop had it."""
    monkeypatch.setattr(loop_flow, "record_stop", lambda record: None)
    monkeypatch.setattr(loop_flow, "_progress", progress)
    loop_flow._stopped_by("SIGINT")
    return capsys.readouterr().err


def test_stopped_in_the_second_of_two_rounds_the_hint_runs_the_one_left(monkeypatch, capsys):
    err = _stop(monkeypatch, capsys, asked=2, done=1, round=2, stage="train")
    assert "python -m flows.loop --rounds 1`" in err


def test_stopped_in_the_first_round_the_hint_runs_all_asked_for(monkeypatch, capsys):
    err = _stop(monkeypatch, capsys, asked=2, done=0, round=1, stage="generate")
    assert "python -m flows.loop --rounds 2`" in err


def test_a_round_whose_advance_had_moved_params_on_counts_as_done(monkeypatch, capsys):
    monkeypatch.setattr(loop_flow, "load_params", lambda: type("P", (), {"round": 3})())
    err = _stop(monkeypatch, capsys, asked=3, done=1, round=2, stage="advance")
    assert "python -m flows.loop --rounds 1`" in err


def test_with_every_round_asked_for_done_nothing_is_left_to_resume():
    assert "nothing is left" in loop_flow.resume_hint(2, 2)


def test_stopped_before_the_run_knew_its_rounds_the_hint_is_the_plain_command():
    assert "`python -m flows.loop`" in loop_flow.resume_hint(None, 0)


class FlakyServer:
    """Prefect's temporary server that misses its start-up timeout `fails` times."""

    def __init__(self, fails: int):
        self.fails, self.timeouts = fails, []
        self.server_process, self.port, self.running = None, None, False

    def start(self, timeout=None):
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.fails:
            raise RuntimeError(TIMEOUT)
        self.running = True


@pytest.fixture
def ephemeral(monkeypatch):
    """Ephemeral mode (no PREFECT_API_URL), with a start-up timeout of 20 s."""
    from prefect.settings import (PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED,
                                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings)

    with temporary_settings({PREFECT_API_URL: None, PREFECT_SERVER_EPHEMERAL_ENABLED: True,
                             PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 20}):
        yield lambda server: monkeypatch.setattr("prefect.server.api.server.SubprocessASGIServer", lambda: server)


def test_a_prefect_server_that_times_out_is_retried_with_longer_waits(ephemeral, capsys):
    server = FlakyServer(fails=2)
    ephemeral(server)
    loop_flow.start_prefect_server()
    assert server.running and server.timeouts == [20, 40, 60]
    assert "try 1 of 3" in capsys.readouterr().err


def test_a_prefect_server_that_never_starts_is_reported_as_a_busy_machine_not_a_bug(ephemeral):
    server = FlakyServer(fails=99)
    ephemeral(server)
    with pytest.raises(SharpenError, match="did not start in 3 tries.*PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        loop_flow.start_prefect_server()
    assert len(server.timeouts) == 3
