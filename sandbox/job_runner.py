"""selfalign in-sandbox runner (standard library only).

Runs inside the sandbox (a Docker container or a bubblewrap namespace) as a
long-lived process. It reads one JSON job per line on stdin and writes one JSON
verdict per line on stdout:

    -> {"seq": 7, "id": "p1", "code": "assert 1 + 1 == 2\\n"}
    <- {"seq": 7, "id": "p1", "status": "pass", "duration_s": 0.004, ...}

The first line it writes is {"ready": true, ...}. EOF on stdin makes it exit.

Each job runs in a child forked from this already-started interpreter (no
interpreter start-up per job). The child gets its own session and process group,
rlimits, a fresh working directory, stdin from /dev/null, stdout and stderr on
pipes read up to a cap, and (unless --same-uid) a user id that is not the
runner's, so the program can neither signal nor trace the runner. After each job
a "janitor" process running as the program's user kills every process of that
user and deletes every file it left; the runner then checks that nothing
survived. When it cannot prove that, the verdict carries "dirty": true and the
host replaces the whole sandbox before the next job.

Time bound: everything the runner does after a job ended or was killed (killing
what is left, waiting for the janitor and the child, deleting files) shares one
budget, --cleanup-s, counted from the moment the job loop stops. What cannot be
done within it is not waited for: the verdict says "dirty". The host's watchdog
waits the job's limit plus that budget plus a margin before it declares the
runner stuck (WATCHDOG_GRACE_S in selfalign/sandbox/_pool.py), so a healthy runner
busy with a fork bomb always answers before it is given up on.

Pass rule: a program passes only when its code ran to the end (the child reports
completion on a private pipe after the code returns) and the process exited 0.
``sys.exit(0)`` / ``os._exit(0)`` before the end is a ``fail``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import json
import os
import resource
import selectors
import signal
import sys
import time

# The completion pipe is moved to this descriptor in the child: high enough that
# programs which close stdio or a few low descriptors do not hit it by accident.
STATUS_FD = 1000
CHILD_SETUP_FAILED = 121

# Modules imported once here so that forked children do not pay for them. The
# list covers what HumanEval-style programs and typical tests import.
PRELOAD = (
    "abc", "array", "ast", "bisect", "builtins", "calendar", "cmath", "collections",
    "collections.abc", "copy", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "hashlib", "heapq", "inspect", "io", "itertools", "json", "math",
    "numbers", "operator", "random", "re", "statistics", "string", "struct", "textwrap",
    "threading", "time", "traceback", "types", "typing", "unittest", "unicodedata",
)


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(Exception):  # a missing optional module is not fatal
            importlib.import_module(name)


class Limits:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.timeout_s: float = ns.timeout
        self.cleanup_s: float = ns.cleanup_s
        self.memory_bytes: int = ns.memory_mb * 1024 * 1024
        self.output_limit: int = ns.output_limit
        self.tail_bytes: int = ns.tail_bytes
        self.file_size: int = ns.file_size_mb * 1024 * 1024
        self.nofile: int = ns.nofile
        self.nproc: int = ns.nproc
        self.uid: int | None = None if ns.same_uid else ns.uid
        self.work_root: str = ns.work_root
        self.sched: str = ns.sched
        extra = [d for d in ns.scratch.split(",") if d]
        self.scratch: list[str] = [d for d in [ns.work_root, *extra] if os.path.isdir(d)]


# ---------------------------------------------------------------------------
# process bookkeeping


_exited: dict[int, int] = {}


def _reap() -> None:
    """Collect every exited child (we may be PID 1: orphans are ours to reap)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _exited[pid] = status


def _wait_pid(pid: int, wake_r: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        if pid in _exited:
            return _exited.pop(pid)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sel = selectors.DefaultSelector()
        sel.register(wake_r, selectors.EVENT_READ)
        if sel.select(min(left, 0.05)):
            _drain(wake_r)
        sel.close()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _survivors(lim: Limits) -> list[int]:
    """Live processes that belong to the job (by uid, or anything but us)."""
    me = os.getpid()
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me or pid == 1:
            continue
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                text = f.read().decode("ascii", "replace")
        except OSError:
            continue
        uid = state = None
        for line in text.splitlines():
            if line.startswith("State:"):
                state = line.split()[1]
            elif line.startswith("Uid:"):
                uid = int(line.split()[1])
        if state == "Z":
            continue
        if lim.uid is None or uid == lim.uid:
            found.append(pid)
    return found


def _ipc_leftovers() -> bool:
    """SysV IPC objects outlive processes; the runner creates none."""
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                if len(f.read().splitlines()) > 1:
                    return True
        except OSError:
            continue
    return False


def _scratch_leftovers(lim: Limits) -> bool:
    for d in lim.scratch:
        try:
            if os.listdir(d):
                return True
        except OSError:
            return True
    return False


def _remove_tree_contents(root: str) -> None:
    """Delete everything under root (the caller runs as the files' owner)."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            with contextlib.suppress(OSError):
                os.chmod(path, 0o700)
            _remove_tree_contents(path)
            with contextlib.suppress(OSError):
                os.rmdir(path)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
        del st


def _quick_clean(lim: Limits) -> bool:
    """Delete what a job left, as the runner, when that needs no privilege.

    Every scratch directory and each job's working directory belong to root with
    the sticky bit, so their owner (the runner) may unlink any file in them; a
    sub-directory the program made may be unreadable to us, so that case (and any
    error) returns False and the janitor does the work as the program's user.
    """
    for d in lim.scratch:
        try:
            entries = list(os.scandir(d))
        except OSError:
            return False
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if d != lim.work_root or not e.name.startswith("job-"):
                        return False
                    for f in os.scandir(e.path):
                        if f.is_dir(follow_symlinks=False):
                            return False
                        os.unlink(f.path)
                    os.rmdir(e.path)
                else:
                    os.unlink(e.path)
            except OSError:
                return False
    return True


def _janitor(lim: Limits, wake_r: int, deadline: float) -> bool:
    """Kill every process of the job's user and delete its files.

    Runs in a forked process as the job's user: kill(-1) then reaches exactly the
    job's processes (and is a single atomic sweep, so a fork bomb cannot outrun
    it), and the user owns every file it must delete, so the runner needs neither
    CAP_KILL nor CAP_DAC_OVERRIDE. Returns False when it could not finish by
    ``deadline`` (a time.monotonic() value).
    """
    if lim.uid is None:
        # Same-uid mode (unprivileged bubblewrap): we cannot change user, so kill
        # by pid and delete as ourselves.
        for _ in range(5):
            pids = _survivors(lim)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
            _reap()
        for d in lim.scratch:
            _remove_tree_contents(d)
        return True
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(lim.uid)
            os.setuid(lim.uid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
            for d in lim.scratch:
                _remove_tree_contents(d)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    status = _wait_pid(pid, wake_r, max(0.0, deadline - time.monotonic()))
    if status is None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        return False
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _sweep(lim: Limits, wake_r: int, deadline: float) -> tuple[bool, list[int]]:
    """Kill the job's processes until none is left (or ``deadline`` has passed).

    Processes hit by SIGKILL take a moment to finish exiting (hundreds of them after
    a fork bomb), so the sweep repeats the janitor and re-checks until /proc shows
    no live process of the job. Each janitor gets only what is left of the same
    deadline, so the whole sweep ends by it.
    """
    ok = True
    while True:
        ok = _janitor(lim, wake_r, deadline) and ok
        for _ in range(20):
            _reap()
            left = _survivors(lim)
            if not left:
                return ok, []
            if time.monotonic() > deadline:
                return ok, left
            time.sleep(0.005)


def _oom_kills() -> int:
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return -1


# ---------------------------------------------------------------------------
# the child


def _child(job: dict, lim: Limits, out_w: int, err_w: int, st_w: int,
           wake: tuple[int, int]) -> None:
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    os.close(wake[0])
    os.close(wake[1])
    # Under memory pressure the kernel must pick the job, never the runner.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    # The program yields the CPU to the runner: a CPU-bound program (or hundreds of
    # them after a fork bomb) cannot starve the runner that must time it out.
    # SCHED_IDLE only weighs against processes of the same cgroup (the container);
    # without a cgroup (bwrap) a plain nice value is kinder to the host.
    try:
        if lim.sched == "idle":
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif lim.sched == "nice":
            os.nice(10)
    except (OSError, AttributeError):
        pass
    cpu = int(lim.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (lim.memory_bytes, lim.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_size, lim.file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if lim.uid is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (lim.nproc, lim.nproc))
        os.setgroups([])
        os.setgid(lim.uid)
        os.setuid(lim.uid)
    workdir = os.path.join(lim.work_root, f"job-{job['seq']}")
    os.chdir(workdir)
    path = os.path.join(workdir, "prog.py")
    code = job.get("code", "")
    with open(path, "w", encoding="utf-8") as f:
        f.write(code)

    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(st_w, STATUS_FD)
    os.set_inheritable(STATUS_FD, False)
    os.closerange(3, STATUS_FD)
    os.closerange(STATUS_FD + 1, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim.nofile, lim.nofile))

    os.environ.clear()
    os.environ.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
    })
    import io
    import types

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.argv = [path]
    sys.path[0] = workdir
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    import random

    random.seed()

    def report(msg: dict) -> None:
        with contextlib.suppress(OSError):
            os.write(STATUS_FD, (json.dumps(msg) + "\n").encode())

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the program may have closed it
                stream.flush()

    try:
        exec(compile(code, path, "exec"), module.__dict__)
        import threading

        for t in threading.enumerate():
            if t is not threading.main_thread() and not t.daemon:
                t.join()
    except SystemExit as e:
        flush()
        n = e.code
        ecode = 0 if n is None else (n if isinstance(n, int) else 1)
        report({"exception": "SystemExit", "early": True, "code": ecode})
        os._exit(ecode & 0xFF)
    except BaseException as e:  # noqa: BLE001 - every failure of the program is reported
        report({"exception": type(e).__name__})
        try:
            import traceback

            tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
            traceback.print_exception(type(e), e, tb)
        except BaseException:  # noqa: BLE001
            pass
        flush()
        os._exit(1)
    flush()
    report({"done": True})
    os._exit(0)


# ---------------------------------------------------------------------------
# one job, seen from the runner


class _Tail:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.buf = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self.buf += data
        if len(self.buf) > 2 * self.keep:
            del self.buf[: len(self.buf) - self.keep]

    def text(self) -> str:
        return bytes(self.buf[-self.keep:]).decode("utf-8", "replace")


def run_job(job: dict, lim: Limits, wake: tuple[int, int]) -> dict:
    wake_r = wake[0]
    oom_before = _oom_kills()
    # Made by the runner (root, sticky, world-writable) so the runner may delete the
    # program's files in it without any capability.
    workdir = os.path.join(lim.work_root, f"job-{job.get('seq')}")
    os.mkdir(workdir)
    os.chmod(workdir, 0o1777)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            _child(job, lim, out_w, err_w, st_w, wake)
        except BaseException as e:  # noqa: BLE001
            with contextlib.suppress(OSError):
                os.write(st_w, (json.dumps({"setup_error": repr(e)}) + "\n").encode())
        os._exit(CHILD_SETUP_FAILED)
    for fd in (out_w, err_w, st_w):
        os.close(fd)
    for fd in (out_r, err_r, st_r):
        os.set_blocking(fd, False)

    out, err = _Tail(lim.tail_bytes), _Tail(lim.tail_bytes)
    status_buf = bytearray()
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, out)
    sel.register(err_r, selectors.EVENT_READ, err)
    sel.register(st_r, selectors.EVENT_READ, status_buf)
    sel.register(wake_r, selectors.EVENT_READ, None)
    deadline = t0 + lim.timeout_s
    killed_for: str | None = None
    wstatus: int | None = None

    def pump(key_data: object, fd: int) -> bool:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return True
        if not data:
            return False
        if isinstance(key_data, _Tail):
            key_data.add(data)
        elif isinstance(key_data, bytearray) and len(key_data) < 65536:
            key_data.extend(data)
        return True

    while wstatus is None:
        now = time.monotonic()
        if now >= deadline:
            killed_for = "timeout"
            break
        for key, _ in sel.select(deadline - now):
            if key.data is None:
                _drain(wake_r)
                continue
            if not pump(key.data, key.fd):
                sel.unregister(key.fd)
        if out.total + err.total > lim.output_limit:
            killed_for = "output_limit"
            break
        _reap()
        if pid in _exited:
            wstatus = _exited.pop(pid)
    duration = time.monotonic() - t0

    # Anything of the job still alive (background children, or the child itself
    # after a timeout) dies here; the files go too. All of it shares one budget
    # (see "Time bound" above): the host gives up on us soon after it.
    cleanup_deadline = time.monotonic() + lim.cleanup_s
    survivors: list[int] = []
    if killed_for is not None or wstatus is None or _survivors(lim):
        clean_ok, survivors = _sweep(lim, wake_r, cleanup_deadline)
    else:
        clean_ok = _quick_clean(lim) or _janitor(lim, wake_r, cleanup_deadline)
    if wstatus is None:
        wstatus = _wait_pid(pid, wake_r, max(0.0, cleanup_deadline - time.monotonic()))
    # Every writer is dead now; read what is left without waiting for EOF.
    for key in list(sel.get_map().values()):
        if key.data is None:
            continue
        for _ in range(64):
            try:
                data = os.read(key.fd, 65536)
            except (BlockingIOError, InterruptedError, OSError):
                break
            if not data:
                break
            sink = key.data
            if isinstance(sink, _Tail):
                sink.add(data)
            elif isinstance(sink, bytearray):
                sink.extend(data)
    sel.close()
    for fd in (out_r, err_r, st_r):
        os.close(fd)

    _reap()
    if not survivors:
        survivors = _survivors(lim)
    if not survivors:
        _quick_clean(lim)
    dirty_reasons = []
    if not clean_ok:
        dirty_reasons.append("janitor failed")
    if survivors:
        dirty_reasons.append(f"{len(survivors)} processes survived")
    if wstatus is None:
        dirty_reasons.append("child did not exit")
    if _scratch_leftovers(lim):
        dirty_reasons.append("files remained")
    if _ipc_leftovers():
        dirty_reasons.append("SysV IPC objects remained")

    report: dict = {}
    for line in bytes(status_buf).splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            report = msg
            break

    result = _classify(report, wstatus, killed_for, oom_before, out.total + err.total, lim)
    result.update({
        "seq": job.get("seq"),
        "id": job.get("id"),
        "duration_s": round(duration, 6),
        "stdout_tail": out.text(),
        "stderr_tail": err.text(),
        "dirty": bool(dirty_reasons),
    })
    if dirty_reasons:
        result["dirty_reason"] = "; ".join(dirty_reasons)
    return result


def _classify(report: dict, wstatus: int | None, killed_for: str | None, oom_before: int,
              out_total: int, lim: Limits) -> dict:
    exit_code: int | None = None
    signame: str | None = None
    if wstatus is not None:
        if os.WIFEXITED(wstatus):
            exit_code = os.WEXITSTATUS(wstatus)
        elif os.WIFSIGNALED(wstatus):
            sig = os.WTERMSIG(wstatus)
            exit_code = -sig
            try:
                signame = signal.Signals(sig).name
            except ValueError:
                signame = f"signal {sig}"
    exc = report.get("exception")
    base = {"exit_code": exit_code, "exception": exc}
    if killed_for == "timeout":
        return {**base, "status": "timeout", "exception": exc or "Timeout",
                "reason": f"wall-clock limit of {lim.timeout_s:g}s exceeded"}
    if killed_for == "output_limit":
        return {**base, "status": "output_limit", "exception": exc or "OutputLimit",
                "reason": f"stdout+stderr exceeded {lim.output_limit} bytes"}
    if "setup_error" in report:
        return {**base, "status": "sandbox_error", "exception": "SandboxSetupError",
                "reason": str(report["setup_error"])[:500]}
    if exc == "MemoryError":
        return {**base, "status": "memory"}
    if signame == "SIGXCPU":
        return {**base, "status": "timeout", "exception": "CPUTimeLimit",
                "reason": "CPU-time rlimit exceeded"}
    if signame == "SIGKILL":
        after = _oom_kills()
        if oom_before >= 0 and after > oom_before:
            return {**base, "status": "memory", "exception": "OOMKilled"}
    if signame is not None:
        return {**base, "status": "fail", "exception": exc or f"Killed by {signame}"}
    if report.get("done") and exit_code == 0:
        return {**base, "status": "pass", "exception": None}
    if report.get("early"):
        return {**base, "status": "fail", "exception": "SystemExit",
                "reason": "the program exited before its end (sys.exit)"}
    if exc is None:
        return {**base, "status": "fail", "exception": "EarlyExit",
                "reason": "the program exited before its end (os._exit or a closed status pipe)"}
    return {**base, "status": "fail"}


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--uid", type=int, default=65000, help="user id the programs run as")
    p.add_argument("--same-uid", action="store_true",
                   help="run programs as the runner's own user (unprivileged bubblewrap)")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--cleanup-s", type=float, default=5.0,
                   help="seconds the clean-up after a job may take before the verdict "
                        "(the host's watchdog allows this plus a margin)")
    p.add_argument("--memory-mb", type=int, default=1024)
    p.add_argument("--output-limit", type=int, default=1 << 20)
    p.add_argument("--tail-bytes", type=int, default=4096)
    p.add_argument("--file-size-mb", type=int, default=16)
    p.add_argument("--nofile", type=int, default=256)
    p.add_argument("--nproc", type=int, default=64)
    p.add_argument("--work-root", default="/work")
    p.add_argument("--sched", choices=("idle", "nice", "none"), default="idle",
                   help="scheduling of programs: SCHED_IDLE (in a cgroup), nice 10, or none")
    p.add_argument("--scratch", default="/tmp,/dev/shm,/dev/mqueue",
                   help="comma-separated writable directories emptied after every job")
    ns = p.parse_args(argv)
    lim = Limits(ns)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    _preload()
    # Objects created so far are never freed; keeping the collector off them
    # keeps their pages shared with every forked child.
    gc.collect()
    gc.freeze()

    out = sys.stdout
    # Start from a clean slate in case the sandbox was reused.
    _janitor(lim, wake_r, time.monotonic() + lim.cleanup_s)
    out.write(json.dumps({"ready": True, "pid": os.getpid(),
                          "python": sys.version.split()[0]}) + "\n")
    out.flush()
    stdin = sys.stdin.buffer
    while True:
        try:
            line = stdin.readline()
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            raise
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            if not isinstance(job, dict) or not isinstance(job.get("code"), str):
                raise ValueError("a job must be an object with a string 'code'")
        except ValueError as e:
            res = {"status": "sandbox_error", "exception": "BadJob", "reason": str(e),
                   "dirty": False}
        else:
            try:
                res = run_job(job, lim, (wake_r, wake_w))
            except Exception as e:  # noqa: BLE001 - report, and ask to be replaced
                res = {"seq": job.get("seq"), "id": job.get("id"), "status": "sandbox_error",
                       "exception": type(e).__name__, "reason": f"runner error: {e!r}",
                       "dirty": True}
        out.write(json.dumps(res) + "\n")
        out.flush()
        if res.get("dirty"):
            # A sandbox we cannot vouch for is not reused: exit, the host replaces it.
            return 3


if __name__ == "__main__":
    sys.exit(main())
