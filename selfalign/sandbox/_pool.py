"""The warm pool shared by both backends.

A backend only says how to start one sandbox process (``docker run -i ...`` or
``bwrap ...``) whose stdin/stdout speak the runner's line protocol, and how to
destroy it. Everything else lives here: keeping N sandboxes warm, feeding them
jobs (a few queued per sandbox, so none waits on a round trip), the host-side
watchdog, replacing a sandbox that died or could not vouch for itself, retrying
the job it was running once on a fresh sandbox, and streaming verdicts back in
completion order with a bounded number of jobs in flight.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import selectors
import signal
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from .config import SandboxConfig
from .errors import SandboxUnavailable
from .flags import CLEANUP_BUDGET_S
from .verdict import STATUSES, ExecResult, Program

log = logging.getLogger(__name__)

# Extra seconds the host waits beyond the program's own limit before it declares
# the runner stuck. The runner bounds its clean-up after a job by CLEANUP_BUDGET_S
# (it reports "dirty" rather than overrun it); the margin covers the rest: noticing
# the limit, the final checks, the way back through `docker attach`, and our own
# scheduling on a loaded machine. The grace must stay above the budget, or a
# healthy runner still killing a fork bomb is replaced (and its job retried).
WATCHDOG_MARGIN_S = 5.0
WATCHDOG_GRACE_S = CLEANUP_BUDGET_S + WATCHDOG_MARGIN_S
MAX_CONSECUTIVE_START_FAILURES = 3


@dataclass
class _Job:
    program: Program
    seq: int
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


class _Worker:
    def __init__(
        self,
        slot: int,
        name: str,
        proc: subprocess.Popen[bytes],
        stderr: IO[bytes],
        start_deadline: float,
    ) -> None:
        self.slot = slot
        self.name = name
        self.proc = proc
        self.stderr = stderr
        self.fd = proc.stdout.fileno() if proc.stdout else -1
        self.buf = bytearray()
        self.ready = False
        self.ready_info: dict[str, Any] = {}  # the runner's ready line
        self.retiring = False  # reported dirty: no new jobs, it exits by itself
        self.dead = False
        self.inflight: deque[_Job] = deque()
        self.jobs_done = 0
        self.stealing = False  # a steal request is unanswered
        self.stolen_at = -1  # jobs_done when its last steal was answered
        self.deadline = start_deadline

    def stderr_text(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read()[-2000:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""


class ProcessPool(ABC):
    """A pool of warm sandboxes, each one long-lived process running sandbox/job_runner.py."""

    backend = "?"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.pool_id = secrets.token_hex(4)
        self._workers: list[_Worker] = []
        self._sel = selectors.DefaultSelector()
        self._seq = 0
        self._closed = False
        self._entered = False
        self._start_failures = 0
        self._last_start_error = ""
        self.stats: dict[str, int] = {"started": 0, "replaced": 0, "retried": 0, "stolen": 0}

    # -- what a backend provides -------------------------------------------------

    def _prepare(self) -> None:  # noqa: B027 - optional hook
        """Checks and preparation before the first sandbox starts (raise SandboxUnavailable)."""

    @abstractmethod
    def _launch_argv(self, slot: int, name: str) -> list[str]:
        """Command line of one sandbox process speaking the runner protocol."""

    def _launch_env(self) -> dict[str, str] | None:
        """Environment of the launcher process (None: ours)."""
        return None

    def _destroy(self, worker: _Worker) -> None:  # noqa: B027 - optional hook
        """Make sure the sandbox of ``worker`` is gone (its process is already killed)."""

    def _cleanup_all(self) -> None:  # noqa: B027 - optional hook
        """Remove anything of this pool that may still exist (called on close)."""

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> ProcessPool:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        if self._entered:
            return
        self._entered = True
        try:
            self._prepare()
            for slot in range(self.config.workers):
                self._spawn(slot)
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> None:
        """Block until every first sandbox reports ready (clear errors if none can)."""
        while any(not w.ready and not w.dead for w in self._workers):
            self._poll(min(1.0, self.config.start_timeout_s))
            self._check_deadlines()
            for w in list(self._workers):
                if w.dead:
                    self._replace(w, f"sandbox {w.name} failed to start")
        if not any(w.ready for w in self._workers):
            raise SandboxUnavailable(
                f"no {self.backend} sandbox could start: {self._last_start_error}"
            )

    def _spawn(self, slot: int) -> _Worker:
        name = f"selfalign-sbx-{self.pool_id}-{slot}-{secrets.token_hex(2)}"
        argv = self._launch_argv(slot, name)
        # The worker owns it and closes it in _finish_worker.
        stderr = tempfile.TemporaryFile()  # noqa: SIM115
        log.debug("starting sandbox %s: %s", name, " ".join(argv))
        try:
            proc = subprocess.Popen(
                argv,
                env=self._launch_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            stderr.close()
            raise SandboxUnavailable(
                f"{argv[0]} is not installed: install it, or choose the "
                "other backend with --backend"
            ) from e
        w = _Worker(slot, name, proc, stderr, time.monotonic() + self.config.start_timeout_s)
        os.set_blocking(w.fd, False)
        self._sel.register(w.fd, selectors.EVENT_READ, w)
        self._workers.append(w)
        self.stats["started"] += 1
        return w

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing stdin is the polite stop: each runner reads EOF and exits, and its
        # container (--rm) or namespace goes with it.
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                if w.proc.stdin:
                    w.proc.stdin.close()
        deadline = time.monotonic() + 5.0
        for w in self._workers:
            if w.inflight:
                # Abandoned jobs (an interrupted run): the runner would run every one
                # of them before it reads the end of its input.
                _kill_group(w.proc)
                continue
            try:
                w.proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(w.proc)
        for w in self._workers:
            self._finish_worker(w, destroy=False)
        self._workers.clear()
        # One call removes whatever of the pool is left (each sandbox's own removal
        # would be one more engine round trip per worker).
        with contextlib.suppress(Exception):
            self._cleanup_all()
        self._sel.close()

    def _finish_worker(self, w: _Worker, destroy: bool = True) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(w.fd)
        if w.proc.poll() is None:
            _kill_group(w.proc)
        if destroy:
            with contextlib.suppress(Exception):
                self._destroy(w)
        for f in (w.proc.stdin, w.proc.stdout):
            with contextlib.suppress(Exception):
                if f:
                    f.close()
        with contextlib.suppress(Exception):
            w.stderr.close()

    # -- running -------------------------------------------------------------------------

    def run(self, programs: Iterable[Program | None]) -> Iterator[ExecResult]:
        """Run programs; yield one verdict per program, in completion order.

        Programs are pulled from the iterable only as sandboxes free up, so memory
        stays bounded whatever the input size. The iterable may yield ``None`` for
        "nothing to run until one of my programs finishes": the pool then asks again
        after the next verdict it yields (a generator that makes programs out of
        earlier verdicts works this way).
        """
        if not self._entered:
            self.start()
        if self._closed:
            raise RuntimeError("the sandbox pool is closed; open a new one with open_pool()")
        self._drain_abandoned()
        source = iter(programs)
        exhausted = False
        retries: deque[_Job] = deque()
        done: deque[ExecResult] = deque()
        depth = self.config.pipeline_depth

        while True:
            # Feed every sandbox that has room, one write each. Each job goes to the
            # sandbox with the fewest queued, so a short run (a few long programs) is
            # spread over all of them instead of queued behind one.
            open_ = [w for w in self._workers if w.ready and not w.dead and not w.retiring]
            batches: dict[int, list[_Job]] = {id(w): [] for w in open_}
            paused = False
            while open_ and not paused:
                w = min(open_, key=lambda x: len(x.inflight) + len(batches[id(x)]))
                if len(w.inflight) + len(batches[id(w)]) >= depth:
                    break
                job = self._take_retry(w, retries)
                if job is None and not exhausted:
                    try:
                        prog = next(source)
                    except StopIteration:
                        exhausted = True
                        continue
                    if prog is None:
                        paused = True  # nothing until a verdict goes out
                        continue
                    bad = _invalid(prog)
                    if bad is not None:
                        done.append(bad)
                        continue
                    self._seq += 1
                    job = _Job(prog, self._seq)
                if job is None:
                    open_.remove(w)  # nothing it may take: the others may take a retry
                    continue
                batches[id(w)].append(job)
            for w in self._workers:
                if batches.get(id(w)):
                    self._send(w, batches[id(w)])
            while done:
                yield done.popleft()
            if (exhausted or paused) and not retries:
                self._rebalance()
            busy = any(w.inflight for w in self._workers)
            if exhausted and not busy:
                if not retries:
                    return
                if not any(not w.dead for w in self._workers):
                    self._ensure_capacity()
            # A paused source with nothing in flight waits on something else: ask again soon.
            self._poll(0.001 if paused and not busy else self._next_timeout())
            for r in self._collect(retries):
                done.append(r)
            while done:
                yield done.popleft()

    def _rebalance(self) -> None:
        """Once every program is handed out, move queued jobs from the busiest sandbox
        to one that ran dry (each sandbox gets ``pipeline_depth`` jobs ahead, so the
        last of a run could otherwise finish long after the others sat idle)."""
        usable = [w for w in self._workers if w.ready and not w.dead and not w.retiring]
        if not any(not w.inflight for w in usable):
            return
        donors = [w for w in usable if not w.stealing and len(w.inflight) >= 3
                  and w.jobs_done != w.stolen_at]
        if not donors:
            return
        donor = max(donors, key=lambda w: len(w.inflight))
        # Its first job is running; half of the others move.
        self._write(donor, json.dumps({"steal": (len(donor.inflight) - 1) // 2}).encode()
                    + b"\n")
        donor.stealing = True

    def _drain_abandoned(self) -> None:
        """Finish (and drop) jobs a previous ``run`` left in flight when its caller
        stopped iterating early, so their verdicts cannot leak into this run."""
        while any(w.inflight for w in self._workers):
            self._poll(self._next_timeout())
            self._collect(deque())

    def _take_retry(self, w: _Worker, retries: deque[_Job]) -> _Job | None:
        """A requeued job for ``w``: one that failed once runs only on a fresh sandbox
        (unless none is coming); jobs that never started may run anywhere."""
        if not retries:
            return None
        fresh = w.jobs_done == 0 and not w.inflight
        fresh_coming = any(not x.dead and (not x.ready or (x.jobs_done == 0 and not x.inflight))
                           for x in self._workers if x is not w)
        for i, job in enumerate(retries):
            if job.attempts == 0 or fresh or not fresh_coming:
                del retries[i]
                return job
        return None

    def _send(self, w: _Worker, jobs: list[_Job]) -> None:
        data = b"".join(
            json.dumps({"seq": j.seq, "id": j.program.id, "code": j.program.code}).encode()
            + b"\n"
            for j in jobs
        )
        if not w.inflight:
            w.deadline = time.monotonic() + self.config.timeout_s + WATCHDOG_GRACE_S
        w.inflight.extend(jobs)
        self._write(w, data)

    def _write(self, w: _Worker, data: bytes) -> None:
        try:
            assert w.proc.stdin is not None
            w.proc.stdin.write(data)
            w.proc.stdin.flush()
        except (OSError, ValueError):
            w.dead = True

    def _next_timeout(self) -> float:
        now = time.monotonic()
        deadlines = [
            w.deadline for w in self._workers if not w.dead and (w.inflight or not w.ready)
        ]
        if not deadlines:
            return 1.0
        return max(0.0, min(min(deadlines) - now, 1.0))

    def _poll(self, timeout: float) -> None:
        for key, _ in self._sel.select(timeout):
            w: _Worker = key.data
            try:
                data = os.read(w.fd, 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                w.dead = True
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(w.fd)
                continue
            w.buf += data

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for w in self._workers:
            if w.dead:
                continue
            if not w.ready and now > w.deadline:
                self._last_start_error = (
                    f"sandbox did not report ready within {self.config.start_timeout_s:g}s"
                )
                w.dead = True
            elif w.inflight and now > w.deadline and b"\n" not in w.buf:
                # (A complete line already read is an answer: then we were late.)
                log.warning("sandbox %s stopped answering; replacing it", w.name)
                w.dead = True
            while not w.dead and b"\n" in w.buf and not w.ready:
                line, _, rest = bytes(w.buf).partition(b"\n")
                w.buf = bytearray(rest)
                try:
                    msg = json.loads(line)
                except ValueError:
                    msg = {}
                if msg.get("ready"):
                    w.ready = True
                    w.ready_info = msg
                    self._start_failures = 0
                    log.debug("sandbox %s ready: %s", w.name, msg)
                else:
                    self._last_start_error = f"unexpected output: {line[:200]!r}"
                    w.dead = True
            if w.dead and not w.ready:
                err = w.stderr_text()
                if w.proc.poll() is not None and err:
                    self._last_start_error = err
                self._start_failures += 1

    def _collect(self, retries: deque[_Job]) -> list[ExecResult]:
        """Turn the lines read so far into verdicts; replace dead sandboxes."""
        self._check_deadlines()
        out: list[ExecResult] = []
        for w in list(self._workers):
            lines: list[bytes] = []
            if w.ready and b"\n" in w.buf:
                *lines, rest = bytes(w.buf).split(b"\n")
                w.buf = bytearray(rest)
            for line in lines:
                try:
                    msg: dict[str, Any] = json.loads(line)
                    if not isinstance(msg, dict):
                        raise ValueError("not an object")
                except ValueError:
                    log.warning("sandbox %s wrote a bad line %r; replacing it", w.name, line[:200])
                    w.dead = True
                    break
                if "stolen" in msg:
                    # Jobs handed back unstarted go to whichever sandbox has room,
                    # their attempts unchanged.
                    given = msg["stolen"] if isinstance(msg["stolen"], list) else []
                    seqs = {x for x in given if isinstance(x, int)}
                    back = [j for j in w.inflight if j.seq in seqs]
                    for j in back:
                        w.inflight.remove(j)
                    retries.extend(back)
                    self.stats["stolen"] += len(back)
                    w.stealing = False
                    w.stolen_at = w.jobs_done
                    continue
                if not w.inflight or msg.get("seq") != w.inflight[0].seq:
                    log.warning("sandbox %s answered out of order; replacing it", w.name)
                    w.dead = True
                    break
                job = w.inflight.popleft()
                w.jobs_done += 1
                w.deadline = time.monotonic() + self.config.timeout_s + WATCHDOG_GRACE_S
                job.attempts += 1
                if msg.get("status") == "sandbox_error" and msg.get("dirty") and job.attempts < 2:
                    # The runner itself failed on this job: retry it on a fresh sandbox.
                    job.errors.append(str(msg.get("reason")))
                    self.stats["retried"] += 1
                    retries.append(job)
                else:
                    out.append(_to_result(job, msg))
                if msg.get("dirty"):
                    log.info(
                        "sandbox %s could not vouch for itself (%s); replacing it",
                        w.name,
                        msg.get("dirty_reason"),
                    )
                    w.retiring = True
            if w.retiring and not w.inflight:
                w.dead = True
            if w.dead:
                out.extend(self._replace(w, "sandbox process died", retries))
        return out

    def _replace(
        self, w: _Worker, why: str, retries: deque[_Job] | None = None
    ) -> list[ExecResult]:
        """Destroy ``w``; requeue its jobs; start a fresh sandbox in its slot."""
        failed: list[ExecResult] = []
        if w.inflight and not w.retiring:
            err = w.stderr_text()
            reason = f"{why} while running the job" + (f": {err[-300:]}" if err else "")
            head = w.inflight.popleft()
            head.attempts += 1
            head.errors.append(reason)
            if head.attempts >= 2 or retries is None:
                failed.append(
                    ExecResult.error(
                        head.program.id,
                        "the sandbox failed twice on this program: " + " | ".join(head.errors),
                        attempts=head.attempts,
                    )
                )
            else:
                self.stats["retried"] += 1
                retries.append(head)
        # Jobs queued behind it never started: they go back without an attempt.
        if retries is not None:
            for job in reversed(w.inflight):
                retries.appendleft(job)
        w.inflight.clear()
        self._workers.remove(w)
        self._finish_worker(w)
        if not self._closed:
            if self._start_failures >= MAX_CONSECUTIVE_START_FAILURES:
                if not any(x.ready and not x.dead for x in self._workers):
                    raise SandboxUnavailable(
                        f"{self.backend} sandboxes keep failing to start: {self._last_start_error}"
                    )
            else:
                self.stats["replaced"] += 1
                self._spawn(w.slot)
        return failed

    def _ensure_capacity(self) -> None:
        if self._closed:
            return
        live = {w.slot for w in self._workers}
        for slot in range(self.config.workers):
            if slot not in live:
                self._spawn(slot)


def _invalid(prog: Any) -> ExecResult | None:
    pid = getattr(prog, "id", None)
    code = getattr(prog, "code", None)
    if not isinstance(pid, str) or not pid:
        return ExecResult.error(str(pid), "program id must be a non-empty string", attempts=0)
    if not isinstance(code, str):
        return ExecResult.error(pid, "program code must be a string", attempts=0)
    if "\x00" in code:
        return ExecResult.error(pid, "program code contains a NUL byte", attempts=0)
    return None


def _to_result(job: _Job, msg: dict[str, Any]) -> ExecResult:
    status = msg.get("status")
    if status not in STATUSES:
        return ExecResult.error(
            job.program.id, f"runner reported unknown status {status!r}", attempts=job.attempts
        )
    code = msg.get("exit_code")
    return ExecResult(
        id=job.program.id,
        status=status,
        duration_s=float(msg.get("duration_s") or 0.0),
        exit_code=code if isinstance(code, int) else None,
        exception=msg.get("exception"),
        stdout_tail=msg.get("stdout_tail") or "",
        stderr_tail=msg.get("stderr_tail") or "",
        reason=msg.get("reason"),
        attempts=job.attempts,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(5)
