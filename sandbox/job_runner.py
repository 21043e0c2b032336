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

import _signal  # pyright: ignore[reportMissingImports] - the C half of signal, no stub
import argparse
import contextlib
import gc
import io
import json
import os
import resource
import select
import signal
import sys
import time
import types

# The completion pipe is moved to this descriptor in the child: high enough that
# programs which close stdio or a few low descriptors do not hit it by accident.
STATUS_FD = 1000
CHILD_SETUP_FAILED = 121
STEAL = b'{"steal": '  # how a steal request line starts (Channel)
# Longest a finished verdict waits for company (Channel): long enough for a batch
# of short jobs to gather, far below the host's watchdog margin (5 s).
HOLD_S = 0.1

# Modules imported once here so that forked children do not pay for them. The
# list covers what HumanEval-style programs and typical tests import. Deliberately
# absent: `random` and `threading` (and `statistics`, which imports random). Both
# register fork hooks (random reseeds itself, threading resets its locks) that cost
# every forked child about 0.1 ms each, used or not, while importing them costs
# only the rare program that uses them 0.4-0.6 ms; a program that imports random
# then seeds it from os.urandom itself, so jobs never share a random stream.
PRELOAD = (
    "abc", "array", "ast", "bisect", "builtins", "calendar", "cmath", "collections",
    "collections.abc", "copy", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "hashlib", "heapq", "inspect", "io", "itertools", "json", "math",
    "numbers", "operator", "re", "string", "struct", "textwrap", "time", "traceback",
    "types", "typing", "unittest", "unicodedata",
)


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(Exception):  # a missing optional module is not fatal
            importlib.import_module(name)


def _child_stdio() -> tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]:
    """sys.stdin, sys.stdout and sys.stderr of every child, built once.

    A TextIOWrapper costs a fresh child about 0.15 ms to build; one inherited from
    the runner costs a few page copies. The runner never uses them, so their
    buffers are empty at every fork. Each is built over the kind of file it wraps
    in the child (file objects remember whether their file is seekable): stdin
    over /dev/null, stdout and stderr over a pipe.
    """
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    null = os.open("/dev/null", os.O_RDONLY)
    r, w = os.pipe()
    try:
        os.dup2(null, 0)
        os.dup2(w, 1)
        os.dup2(w, 2)
        return (
            io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8"),
            io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                             errors="backslashreplace"),
            io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                             errors="backslashreplace", line_buffering=True),
        )
    finally:
        for fd, old in zip((0, 1, 2), saved, strict=True):
            os.dup2(old, fd)
        for fd in (*saved, null, r, w):
            os.close(fd)


_CHILD_STDIO: tuple[io.TextIOWrapper, ...] = ()  # set by main()


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
        if select.select([wake_r], [], [], min(left, 0.05))[0]:
            _drain(wake_r)


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


class _Counters:
    """Kernel files the runner reads after every job, opened once and re-read with
    pread at offset 0 (one system call each instead of open, fstat, read, close).

    ``pids`` is the container's pids cgroup counter: every live or unreaped process
    of the cgroup, charged by the kernel before a forked process exists. It is used
    only after a self-test shows it counts exactly the runner's own processes.
    """

    def __init__(self) -> None:
        self.oom = _open_first(("/sys/fs/cgroup/memory/memory.oom_control",
                                "/sys/fs/cgroup/memory.events"))
        # SysV IPC objects outlive processes; the runner creates none. Each file is
        # bound to the IPC namespace of the opener, which is ours for good.
        self.ipc = [fd for kind in ("shm", "msg", "sem")
                    if (fd := _open_first((f"/proc/sysvipc/{kind}",))) is not None]
        self.pids = _open_pids_counter()

    def oom_kills(self) -> int:
        if self.oom is None:
            return -1
        try:
            for line in os.pread(self.oom, 4096, 0).splitlines():
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return -1

    def ipc_leftovers(self) -> bool:
        # One header line, then one line per object.
        return any(os.pread(fd, 65536, 0).count(b"\n") > 1 for fd in self.ipc)

    def alone(self) -> bool:
        """True when the runner is the only process left (False: unknown or not)."""
        if self.pids is None:
            return False
        try:
            return int(os.pread(self.pids, 64, 0)) == 1
        except (OSError, ValueError):
            return False


def _open_first(paths: tuple[str, ...]) -> int | None:
    for path in paths:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
    return None


def _open_pids_counter() -> int | None:
    """The pids cgroup counter, if it counts exactly this runner and its children.

    The test: 1 with no child, 2 while a child lives, 1 again once it is reaped. A
    counter of any other cgroup (a host hierarchy seen through bubblewrap, a
    container shared with other processes) fails it, and the runner then falls
    back to scanning /proc. Jobs cannot leave the cgroup: /sys/fs/cgroup is
    read-only and they hold no capability.
    """
    fd = _open_first(("/sys/fs/cgroup/pids/pids.current", "/sys/fs/cgroup/pids.current"))
    if fd is None:
        return None

    def count() -> int:
        try:
            return int(os.pread(fd, 64, 0))
        except (OSError, ValueError):
            return -1

    _reap()
    before = count()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    during = count()
    os.close(w)
    os.waitpid(pid, 0)
    after = count()
    if (before, during, after) == (1, 2, 1):
        return fd
    os.close(fd)
    return None


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


def _sweep(lim: Limits, wake_r: int, deadline: float,
           counters: _Counters) -> tuple[bool, list[int]]:
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
            left = [] if counters.alone() else _survivors(lim)
            if not left:
                return ok, []
            if time.monotonic() > deadline:
                return ok, left
            time.sleep(0.005)


# ---------------------------------------------------------------------------
# the child


def _child(job: dict, lim: Limits, workdir: str, source: bytes, out_w: int, err_w: int,
           st_w: int, wake: tuple[int, int]) -> None:
    """Set the child up and run the program; never returns.

    Every page this touches is copied from the runner (copy-on-write, about 5 us a
    page here), so what can be prepared before the fork is: the paths, the encoded
    source, the environment (run_job) and the standard streams (_child_stdio).
    """
    os.setsid()
    # _signal, not signal: the enum conversions of signal.signal cost a fresh child
    # about 0.05 ms a call.
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        _signal.signal(int(sig), _signal.SIG_DFL)
    _signal.signal(int(signal.SIGINT), _signal.default_int_handler)
    _signal.set_wakeup_fd(-1)
    os.close(wake[0])
    os.close(wake[1])
    # Under memory pressure the kernel must pick the job, never the runner. (Plain
    # descriptors here and below: a file object costs four more system calls.)
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(fd, b"1000")
        os.close(fd)
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
    os.chdir(workdir)
    path = workdir + "/prog.py"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    data = memoryview(source)
    while data:
        data = data[os.write(fd, data):]
    os.close(fd)

    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(st_w, STATUS_FD)
    os.set_inheritable(STATUS_FD, False)
    os.closerange(3, STATUS_FD)
    os.closerange(STATUS_FD + 1, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim.nofile, lim.nofile))

    sys.stdin, sys.stdout, sys.stderr = _CHILD_STDIO
    sys.argv = [path]
    sys.path[0] = workdir
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = module
    # `random` is not preloaded (see PRELOAD): a program that uses it imports it,
    # seeded from os.urandom. Should it ever be loaded here, its fork hook reseeds it.

    def report(msg: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(STATUS_FD, msg)

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the program may have closed it
                stream.flush()

    try:
        # dont_inherit: not the runner's own `from __future__ import annotations`.
        exec(compile(job["code"], path, "exec", dont_inherit=True), module.__dict__)
        # As at interpreter exit: non-daemon threads are joined. Threads exist only
        # if the program imported threading (it is not preloaded).
        threading = sys.modules.get("threading")
        if threading is not None:
            for t in threading.enumerate():
                if t is not threading.main_thread() and not t.daemon:
                    t.join()
    except SystemExit as e:
        flush()
        n = e.code
        ecode = 0 if n is None else (n if isinstance(n, int) else 1)
        report(json.dumps({"exception": "SystemExit", "early": True, "code": ecode}).encode()
               + b"\n")
        os._exit(ecode & 0xFF)
    except BaseException as e:  # noqa: BLE001 - every failure of the program is reported
        report(json.dumps({"exception": type(e).__name__}).encode() + b"\n")
        try:
            import traceback

            tb = e.__traceback__.tb_next if e.__traceback__ is not None else None
            traceback.print_exception(type(e), e, tb)
        except BaseException:  # noqa: BLE001
            pass
        flush()
        os._exit(1)
    flush()
    report(b'{"done": true}\n')
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


def run_job(job: dict, lim: Limits, wake: tuple[int, int], counters: _Counters,
            chan: Channel) -> dict:
    wake_r = wake[0]
    oom_before = counters.oom_kills()
    try:
        source = job["code"].encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates: no file can hold this program
        return {"seq": job.get("seq"), "id": job.get("id"), "status": "sandbox_error",
                "exception": "SandboxSetupError", "reason": f"the program is not text: {e}",
                "exit_code": None, "duration_s": 0.0, "stdout_tail": "", "stderr_tail": "",
                "dirty": False}
    # Made by the runner (root, sticky, world-writable) so the runner may delete the
    # program's files in it without any capability.
    workdir = f"{lim.work_root}/job-{job.get('seq')}"
    os.mkdir(workdir)
    os.chmod(workdir, 0o1777)
    # Prepared here rather than in the child, where each page written is a page
    # copied. The runner's environment is the programs' one (cleared in main).
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    # Everything the wait below needs is made before the fork: while the child lives,
    # each page the runner writes is copied. For the same reason the completion
    # pipe is not watched (it is read once the child is gone; a program that fills
    # it only blocks itself): a well-behaved job wakes the runner only after it
    # has exited, when its pages are the runner's alone again.
    for fd in (out_r, err_r, st_r):
        os.set_blocking(fd, False)
    out, err = _Tail(lim.tail_bytes), _Tail(lim.tail_bytes)
    status_buf = bytearray()
    sinks: dict[int, _Tail | bytearray] = {out_r: out, err_r: err, st_r: status_buf}
    # poll(), not epoll: no kernel object to create, register and close per job.
    poller = select.poll()
    for fd in (out_r, err_r, wake_r):
        poller.register(fd, select.POLLIN)
    killed_for: str | None = None
    wstatus: int | None = None

    def pump(fd: int) -> bool:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return True
        if not data:
            return False
        sink = sinks[fd]
        if isinstance(sink, _Tail):
            sink.add(data)
        elif len(sink) < 65536:
            sink.extend(data)
        return True

    t0 = time.monotonic()
    deadline = t0 + lim.timeout_s
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            _child(job, lim, workdir, source, out_w, err_w, st_w, wake)
        except BaseException as e:  # noqa: BLE001
            with contextlib.suppress(OSError):
                os.write(st_w, (json.dumps({"setup_error": repr(e)}) + "\n").encode())
        os._exit(CHILD_SETUP_FAILED)
    for fd in (out_w, err_w, st_w):
        os.close(fd)

    while wstatus is None:
        now = time.monotonic()
        if now >= deadline:
            killed_for = "timeout"
            break
        chan.flush_if_due()
        for fd, _ in poller.poll(max(0.0, min(deadline, chan.due) - now) * 1000.0):
            if fd == wake_r:
                _drain(wake_r)
            elif not pump(fd):
                poller.unregister(fd)
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
    #
    # The common case, a child that exited by itself, is decided by the pids cgroup
    # counter when it is usable: a count of 1 (the runner) means no process of the
    # job exists, and none can appear (only a live process can fork), so the files
    # are then cleaned and verified once. A /proc scan can miss a process forked
    # while it reads, so without the counter the scan is repeated after clean-up.
    cleanup_deadline = time.monotonic() + lim.cleanup_s
    survivors: list[int] = []
    counted_alone = False
    if killed_for is None and wstatus is not None:
        _reap()
        counted_alone = counters.alone()
        gone = counted_alone or not _survivors(lim)
    else:
        gone = False
    quick_ok = clean_ok = gone and _quick_clean(lim)
    if not quick_ok:
        chan.flush()  # what follows may take up to the clean-up budget
        if gone:
            clean_ok = _janitor(lim, wake_r, cleanup_deadline)
        else:
            clean_ok, survivors = _sweep(lim, wake_r, cleanup_deadline, counters)
    if wstatus is None:
        wstatus = _wait_pid(pid, wake_r, max(0.0, cleanup_deadline - time.monotonic()))
    # Every writer is dead now; read what is left without waiting for EOF.
    for fd, sink in sinks.items():
        for _ in range(64):
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError, OSError):
                break
            if not data:
                break
            if isinstance(sink, _Tail):
                sink.add(data)
            else:
                sink.extend(data)
    for fd in (out_r, err_r, st_r):
        os.close(fd)

    # (After the janitor, directories it could not remove as the program's user are
    # the runner's to remove: the second pass does it.)
    if not (counted_alone and quick_ok):
        _reap()
        if not survivors and not counters.alone():
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
    # After a clean-up that removed every entry it listed while no process of the
    # job existed (the counter says so), nothing can be left: no second listing.
    if not (counted_alone and quick_ok) and _scratch_leftovers(lim):
        dirty_reasons.append("files remained")
    if counters.ipc_leftovers():
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

    result = _classify(report, wstatus, killed_for, oom_before, counters, lim)
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
              counters: _Counters, lim: Limits) -> dict:
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
        after = counters.oom_kills()
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
# the protocol


class Channel:
    """The line protocol on stdin/stdout: jobs read ahead, verdicts sent in batches.

    Every message through `docker attach` passes three processes (the docker CLI,
    dockerd, containerd-shim) each way, so verdicts that are ready together travel
    together. A verdict is held back only while the next job is already here and
    for at most ``hold_s``; it goes out at once when no job is waiting (the host
    must refill us), when ``flush_every`` verdicts are held, and before any slow
    clean-up, so the host's watchdog never waits on a held verdict.

    The host may ask for queued jobs back (a ``{"steal": n}`` line, when another
    sandbox has run dry at the end of a run): up to n jobs that have not started,
    taken from the end of the queue, are answered ``{"stolen": [seq, ...]}`` at the
    next job boundary and never run here.
    """

    def __init__(self, flush_every: int, hold_s: float, fd_in: int = 0, fd_out: int = 1) -> None:
        self.flush_every = max(1, flush_every)
        self.hold_s = hold_s
        self.fd_in, self.fd_out = fd_in, fd_out
        self.inbuf = bytearray()
        self.eof = False
        self.held: list[bytes] = []
        self.due = float("inf")  # time.monotonic() by which the held verdicts go out
        self.steal = 0  # queued jobs the host asked back

    def _read(self, wait: bool) -> None:
        if not wait and not select.select([self.fd_in], [], [], 0)[0]:
            return
        data = os.read(self.fd_in, 65536)
        if data:
            self.inbuf += data
            if STEAL in self.inbuf:
                self._take_steal_requests()
        else:
            self.eof = True

    def _take_steal_requests(self) -> None:
        # A job line is {"seq": ...}, and a quote inside its code is escaped, so a
        # line that starts with STEAL is a request; an unfinished one waits.
        start = 0
        while (i := self.inbuf.find(STEAL, start)) != -1:
            end = self.inbuf.find(b"\n", i)
            if end == -1:
                return
            if i == 0 or self.inbuf[i - 1] == 0x0A:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    self.steal += max(0, int(json.loads(self.inbuf[i:end])["steal"]))
                del self.inbuf[i:end + 1]
                start = i
            else:
                start = i + 1

    def give_back(self) -> list[int]:
        """Take the requested number of queued jobs out of the queue; their seqs."""
        n, self.steal = self.steal, 0
        complete = self.inbuf.rfind(b"\n") + 1  # what follows is an unfinished line
        lines = bytes(self.inbuf[:complete]).split(b"\n")[:-1]
        stolen: list[int] = []
        keep: list[bytes] = []
        for line in reversed(lines):
            seq = None
            if len(stolen) < n:
                with contextlib.suppress(ValueError, AttributeError):
                    seq = json.loads(line).get("seq")
            if isinstance(seq, int):
                stolen.append(seq)
            else:
                keep.append(line)
        keep.reverse()
        self.inbuf = bytearray(b"".join(x + b"\n" for x in keep)) + self.inbuf[complete:]
        return stolen[::-1]

    def take_input(self) -> None:
        """Read whatever the host has sent (steal requests among it), never waiting."""
        if not self.eof:
            self._read(wait=False)

    def job_waiting(self) -> bool:
        """Whether a complete job line is here already (reads what arrived, never waits)."""
        if b"\n" not in self.inbuf and not self.eof:
            self._read(wait=False)
        return b"\n" in self.inbuf

    def next_line(self) -> bytes | None:
        """The next line (None at EOF); flushes held verdicts before it waits."""
        while b"\n" not in self.inbuf:
            if self.steal:
                return b""  # the caller answers the request first
            if self.eof:
                if not self.inbuf:
                    self.flush()
                    return None
                line, self.inbuf = bytes(self.inbuf), bytearray()
                return line
            if not self.job_waiting() and not self.steal:
                self.flush()
                self._read(wait=True)
        i = self.inbuf.index(b"\n")
        line = bytes(self.inbuf[:i])
        del self.inbuf[: i + 1]
        return line

    def send(self, msg: dict, now: bool = False) -> None:
        if not self.held:
            self.due = time.monotonic() + self.hold_s
        self.held.append(json.dumps(msg).encode() + b"\n")
        if now or len(self.held) >= self.flush_every or not self.job_waiting():
            self.flush()

    def flush_if_due(self) -> None:
        if self.held and time.monotonic() >= self.due:
            self.flush()

    def flush(self) -> None:
        if not self.held:
            return
        data = memoryview(b"".join(self.held))
        self.held.clear()
        self.due = float("inf")
        while data:
            data = data[os.write(self.fd_out, data):]


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
    p.add_argument("--flush-every", type=int, default=1,
                   help="verdicts held back at most while further jobs are queued (1: none)")
    p.add_argument("--hold-s", type=float, default=HOLD_S,
                   help="longest a finished verdict is held back, in seconds")
    ns = p.parse_args(argv)
    if ns.same_uid and os.getpid() != 1:
        # Without a user of its own for the programs, the clean-up after every job kills
        # every process it can see: safe only inside a PID namespace of its own.
        p.error("--same-uid kills every other process it can see after each job: run it "
                "only as PID 1 of its own PID namespace (bwrap --unshare-pid --as-pid-1)")
    lim = Limits(ns)
    # The environment every program starts from; run_job adds each job's HOME and
    # TMPDIR before it forks.
    os.environ.clear()
    os.environ.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
    })

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    _preload()
    global _CHILD_STDIO
    _CHILD_STDIO = _child_stdio()
    # Objects created so far are never freed; keeping the collector off them
    # keeps their pages shared with every forked child.
    gc.collect()
    gc.freeze()

    # Start from a clean slate in case the sandbox was reused.
    _janitor(lim, wake_r, time.monotonic() + lim.cleanup_s)
    counters = _Counters()
    chan = Channel(ns.flush_every, ns.hold_s)
    chan.send({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0],
               "pids_counter": counters.pids is not None}, now=True)
    while True:
        chan.take_input()
        if chan.steal:
            chan.send({"stolen": chan.give_back()}, now=True)
        line = chan.next_line()
        if line is None:
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
                res = run_job(job, lim, (wake_r, wake_w), counters, chan)
            except Exception as e:  # noqa: BLE001 - report, and ask to be replaced
                res = {"seq": job.get("seq"), "id": job.get("id"), "status": "sandbox_error",
                       "exception": type(e).__name__, "reason": f"runner error: {e!r}",
                       "dirty": True}
        # A sandbox we cannot vouch for is not reused: say so, exit, the host replaces it.
        dirty = bool(res.get("dirty"))
        chan.send(res, now=dirty)
        if dirty:
            return 3


if __name__ == "__main__":
    sys.exit(main())
