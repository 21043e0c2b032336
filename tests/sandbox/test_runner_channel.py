"""The runner's protocol channel (sandbox/job_runner.py:Channel), over plain pipes.

Verdicts may travel together, but only while the next job is already queued, and
never later than the hold time: these tests pin down when a verdict goes out.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import select
from collections.abc import Iterator
from types import ModuleType

import pytest

from selfalign.sandbox.image import runner_path


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("job_runner_under_test", runner_path())
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def pipes() -> Iterator[tuple[int, int, int, int]]:
    """(host writes jobs, runner reads jobs, runner writes verdicts, host reads verdicts)"""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    yield in_w, in_r, out_w, out_r
    for fd in (in_r, in_w, out_r, out_w):
        with contextlib.suppress(OSError):  # a test may have closed its end already
            os.close(fd)


def _sent(fd: int) -> bytes:
    """What the runner has written so far (never blocks)."""
    data = b""
    while select.select([fd], [], [], 0)[0]:
        data += os.read(fd, 65536)
    return data


def test_a_verdict_goes_out_at_once_when_no_job_waits(runner: ModuleType, pipes: tuple) -> None:
    host_w, run_r, run_w, host_r = pipes
    chan = runner.Channel(flush_every=4, hold_s=60.0, fd_in=run_r, fd_out=run_w)
    os.write(host_w, b'{"seq": 1}\n')
    assert chan.next_line() == b'{"seq": 1}'
    chan.send({"seq": 1})
    assert _sent(host_r) == b'{"seq": 1}\n'


def test_verdicts_wait_for_company_only_while_jobs_are_queued(
    runner: ModuleType, pipes: tuple
) -> None:
    host_w, run_r, run_w, host_r = pipes
    chan = runner.Channel(flush_every=3, hold_s=60.0, fd_in=run_r, fd_out=run_w)
    os.write(host_w, b"".join(b'{"seq": %d}\n' % i for i in range(1, 6)))
    for i in (1, 2):
        chan.next_line()
        chan.send({"seq": i})
        assert _sent(host_r) == b"", "held while the next job is queued"
    chan.next_line()
    chan.send({"seq": 3})
    # flush_every verdicts: out together, in order
    assert _sent(host_r) == b'{"seq": 1}\n{"seq": 2}\n{"seq": 3}\n'
    chan.next_line()
    chan.send({"seq": 4})
    assert _sent(host_r) == b""
    chan.next_line()  # the last queued job: nothing is waiting behind it
    chan.send({"seq": 5})
    assert _sent(host_r) == b'{"seq": 4}\n{"seq": 5}\n'


def test_a_held_verdict_goes_out_when_due(runner: ModuleType, pipes: tuple) -> None:
    host_w, run_r, run_w, host_r = pipes
    chan = runner.Channel(flush_every=8, hold_s=0.0, fd_in=run_r, fd_out=run_w)
    os.write(host_w, b'{"seq": 1}\n{"seq": 2}\n')
    chan.next_line()
    chan.send({"seq": 1})
    assert _sent(host_r) == b""
    chan.flush_if_due()  # what run_job does while the next job runs
    assert _sent(host_r) == b'{"seq": 1}\n'


def test_held_verdicts_go_out_before_the_runner_waits_for_input(
    runner: ModuleType, pipes: tuple
) -> None:
    host_w, run_r, run_w, host_r = pipes
    chan = runner.Channel(flush_every=8, hold_s=60.0, fd_in=run_r, fd_out=run_w)
    os.write(host_w, b'{"seq": 1}\n{"seq": 2}\n')
    chan.next_line()
    chan.send({"seq": 1})
    chan.next_line()
    chan.send({"seq": 2}, now=True)  # a dirty verdict: out at once, with the one held
    assert _sent(host_r) == b'{"seq": 1}\n{"seq": 2}\n'
    os.write(host_w, b'{"seq": 3}\n{"seq": 4}\n')
    chan.next_line()
    chan.send({"seq": 3})
    assert _sent(host_r) == b""
    os.close(host_w)
    assert chan.next_line() == b'{"seq": 4}'
    assert chan.next_line() is None  # EOF
    assert _sent(host_r) == b'{"seq": 3}\n'


def test_steal_takes_queued_jobs_from_the_end(runner: ModuleType, pipes: tuple) -> None:
    host_w, run_r, run_w, host_r = pipes
    chan = runner.Channel(flush_every=1, hold_s=60.0, fd_in=run_r, fd_out=run_w)
    os.write(host_w, b"".join(b'{"seq": %d, "code": "x"}\n' % i for i in range(1, 6)))
    assert chan.next_line() == b'{"seq": 1, "code": "x"}'  # running
    os.write(host_w, b'{"steal": 2}\n{"seq": 6, "code": "x"}\n')
    chan.take_input()  # what the runner does between jobs
    assert chan.steal == 2
    assert chan.give_back() == [5, 6]  # the last two queued, whenever they came
    # what is left runs in order, the request itself is gone
    assert [chan.next_line() for _ in range(3)] == [
        b'{"seq": 2, "code": "x"}', b'{"seq": 3, "code": "x"}', b'{"seq": 4, "code": "x"}']
    assert chan.steal == 0 and _sent(host_r) == b""


def test_a_steal_request_wakes_a_waiting_runner(runner: ModuleType, pipes: tuple) -> None:
    host_w, run_r, run_w, host_r = pipes
    chan = runner.Channel(flush_every=1, hold_s=60.0, fd_in=run_r, fd_out=run_w)
    os.write(host_w, b'{"steal": 3}\n')
    assert chan.next_line() == b""  # returns so the caller can answer
    assert chan.give_back() == []
