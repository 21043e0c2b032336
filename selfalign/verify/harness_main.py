"""The strength harness: one sandbox program that checks many answers at once.

This file is the text of a program (standard library only). The verifier appends one
line, ``_main("<payload>")``, and sends it to the sandbox pool like any other program.

The harness forks a child that runs the *variants* of each answer of the payload one
after the other, in its own process: the null implementation, the tests with a
changed expectation, the mutants, and last a *control* (the original program). Each
variant runs as ``__main__`` in a fresh module, a fresh working directory and a
program file of its own, under a CPU-time limit, with stdout and stderr on
``/dev/null``; the child reports each outcome on a pipe (ordinary failures in
batches, at most 10 ms late) and moves on to the next answer as soon as the result
is decided. Process state a variant can change is put
back before the next one: ``sys`` hooks and attributes, ``sys.modules``, builtins,
the attributes of every module the answer imports (imported before its first
variant), the environment, signal handlers, ``atexit``, warning filters, the decimal
context, the working directory and files left in ``/tmp``. The control run shows
that the program still passes after everything that ran before it.

The parent enforces a wall-clock limit per variant and the harness's time budget. A
child that hangs or dies is killed with its process group and a fresh child carries
on; the variant it was running counts (timeout or crash) only if it was the first
thing the child ran, otherwise it runs again in a fresh child first, so that state
left by other variants cannot decide it. Answers flagged ``isolate`` (the static
checks saw them tamper with the interpreter) run alone in a child of their own.

The control runs only while the answer could still be strong (once it is decided
weak, nothing needs vouching for).

Outcome codes: ``P`` passed (ran to its end), ``F`` an exception, ``X`` ``SystemExit``,
``T`` CPU or wall-clock limit, ``M`` ``MemoryError``, ``C`` the child died, ``-`` not run.
The parent prints one line, ``SELFALIGN-STRENGTH <json>``, as the program's output.
"""

import binascii
import builtins
import contextlib
import json
import os
import signal
import sys
import time
import zlib

MARKER = "SELFALIGN-STRENGTH "
_HOLD_S = 0.01  # longest a child holds an ordinary outcome before it tells the parent
_SIGNALS = [
    getattr(signal, name)
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGALRM",
        "SIGUSR1",
        "SIGUSR2",
        "SIGHUP",
        "SIGPIPE",
        "SIGVTALRM",
        "SIGCHLD",
        "SIGPROF",
        "SIGQUIT",
        "SIGTRAP",
        "SIGWINCH",
    )
    if hasattr(signal, name)
]
_SYS_ATTRS = (
    "stdout",
    "stderr",
    "stdin",
    "excepthook",
    "displayhook",
    "breakpointhook",
    "unraisablehook",
)


class _CpuLimit(BaseException):  # noqa: N818 - raised like a signal, not an error
    """Raised in a variant when its CPU-time budget is spent."""


_ARMED = [False]


def _on_cpu_limit(signum, frame):  # noqa: ARG001
    if _ARMED[0]:
        raise _CpuLimit()


# ---------------------------------------------------------------------------------------
# which variant runs next (the same rule in the parent, the child and the verifier)


def next_run(plan, out):
    """Index of the next variant to run, or None once the result is decided."""
    null = plan.get("null")
    if null is not None:
        if out[null] == "-":
            return null
        if out[null] == "P":
            return None  # tests pass on the null implementation: decided
    perts = plan.get("perts", [])
    sure = plan.get("sure", [])
    if any(out[i] == "P" for i in sure):
        return None  # a module-level check passed with two expected values: decided
    done = [out[i] for i in perts if out[i] != "-"]
    if not any(c != "P" for c in done):
        for i in perts:
            if out[i] == "-":
                return i
        if perts:
            return None  # every changed expectation still passed: decided
    for i in sure:
        if out[i] == "-":
            return i  # each sure change must fail, even after another one did
    muts = plan.get("muts", [])
    need = plan.get("need", len(muts))
    killed = sum(1 for i in muts if out[i] not in ("-", "P"))
    survived = sum(1 for i in muts if out[i] == "P")
    if plan.get("early_stop", True) and (killed >= need or survived > len(muts) - need):
        return None
    for i in muts:
        if out[i] == "-":
            return i
    return None


def weak_decided(plan, out):
    """True once the outcomes alone make the answer weak (no control run needed then)."""
    null = plan.get("null")
    if null is not None and out[null] == "P":
        return True
    perts = plan.get("perts", [])
    if perts and all(out[i] == "P" for i in perts):
        return True
    if any(out[i] == "P" for i in plan.get("sure", [])):
        return True
    muts = plan.get("muts", [])
    if not muts:
        return bool(plan.get("weak_without_mutants"))
    need = plan.get("need", len(muts))
    survived = sum(1 for i in muts if out[i] == "P")
    return survived > len(muts) - need


def _step(cand, out, control):
    """What a candidate needs next: a variant index, "c" (the control: the original
    program, run last and only while the answer could still be strong, or first when it
    calibrates the CPU limit of a slow program) or None (done)."""
    plan = cand["plan"]
    if control not in ("-", "P"):
        return None  # the program does not pass in here: nothing else can be trusted
    if control == "-" and plan.get("calibrate"):
        return "c"
    i = next_run(plan, out)
    if i is not None:
        return i
    if control == "-" and not weak_decided(cand["plan"], out):
        return "c"
    return None


# ---------------------------------------------------------------------------------------
# the child: runs variants in-process


def _listing(dirs):
    found = {}
    for d in dirs:
        with contextlib.suppress(OSError):
            found[d] = set(os.listdir(d))
    return found


def _remove_tree(path):
    if os.path.islink(path) or not os.path.isdir(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            try:
                if os.path.islink(full):
                    os.unlink(full)
                else:
                    os.rmdir(full)
            except OSError:
                pass
    with contextlib.suppress(OSError):
        os.rmdir(path)


class _State:
    """Process state that variants may change, saved when the child starts."""

    def __init__(self, scratch=()):
        import decimal
        import warnings

        self.sys_attrs = {n: getattr(sys, n) for n in _SYS_ATTRS if hasattr(sys, n)}
        self.sys_keys = set(sys.__dict__)
        self.argv = list(sys.argv)
        self.path = list(sys.path)
        self.modules = dict(sys.modules)
        self.builtins = dict(builtins.__dict__)
        self.environ = dict(os.environ)
        self.environ_data = dict(getattr(os.environ, "_data", {}))
        self.cwd = os.getcwd()
        self.recursion = sys.getrecursionlimit()
        # threading is imported only by answers that use it (it costs a few ms).
        threading = sys.modules.get("threading")
        self.thread_hook = threading.excepthook if threading is not None else None
        self.signals = {}
        for sig in _SIGNALS:
            with contextlib.suppress(OSError, ValueError):
                self.signals[sig] = signal.getsignal(sig)
        self.warnings = warnings
        self.filters = list(warnings.filters)
        self.decimal = decimal
        self.decimal_context = decimal.getcontext().copy()
        # Shared directories (the sandbox's /tmp): what a variant leaves there goes.
        self.scratch = _listing(scratch)
        self.watched = {}  # module name -> (module, dict copy)

    def watch(self, names):
        """Import the answer's modules now and remember their attributes."""
        import importlib

        for name in names:
            if name in self.watched or name in ("sys", "builtins", "__main__"):
                continue
            try:
                module = importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - not importable here: the program will say
                continue
            self.watched[name] = (module, dict(module.__dict__))
            self.modules.setdefault(name, module)
        for cls_path in ("unittest.TestCase", "unittest.TestResult"):
            mod_name, _, cls_name = cls_path.rpartition(".")
            if mod_name in self.watched and cls_path not in self.watched:
                cls = getattr(self.watched[mod_name][0], cls_name, None)
                if isinstance(cls, type):
                    self.watched[cls_path] = (cls, dict(cls.__dict__))

    def restore(self, work_root):
        for name, value in self.sys_attrs.items():
            setattr(sys, name, value)
        for name in set(sys.__dict__) - self.sys_keys:
            with contextlib.suppress(AttributeError, TypeError):
                delattr(sys, name)
        sys.argv[:] = self.argv
        sys.path[:] = self.path
        sys.setrecursionlimit(self.recursion)
        sys.settrace(None)
        sys.setprofile(None)
        threading = sys.modules.get("threading")
        if threading is not None:  # (the original hook, if threading came in later)
            hook = self.thread_hook or threading.__excepthook__
            threading.excepthook = hook  # pyright: ignore[reportAttributeAccessIssue]
        main = self.modules.get("__main__")
        if main is not None:
            sys.modules["__main__"] = main
        if sys.modules != self.modules:
            for name in list(sys.modules):
                module = sys.modules[name]
                old = self.modules.get(name)
                if old is not None:
                    if module is not old:
                        sys.modules[name] = old
                    continue
                origin = str(getattr(module, "__file__", None) or "")
                if not hasattr(module, "__spec__") or origin.startswith(work_root):
                    del sys.modules[name]
                else:
                    # A library module the program imported: it stays loaded (importing
                    # it again for every variant would be slow), and joins the baseline.
                    self.modules[name] = module
            for name, module in self.modules.items():
                if name not in sys.modules:
                    sys.modules[name] = module
        if builtins.__dict__ != self.builtins:
            builtins.__dict__.clear()
            builtins.__dict__.update(self.builtins)
        for obj, saved in self.watched.values():
            current = obj.__dict__
            if current == saved:
                continue
            for key in [k for k in current if k not in saved]:
                with contextlib.suppress(AttributeError, TypeError):
                    delattr(obj, key)
            for key, value in saved.items():
                if current.get(key) is not value:
                    with contextlib.suppress(AttributeError, TypeError):
                        setattr(obj, key, value)
        data = getattr(os.environ, "_data", None)
        if (data != self.environ_data) if data is not None else (os.environ != self.environ):
            os.environ.clear()
            os.environ.update(self.environ)
        for sig, handler in self.signals.items():
            try:
                if signal.getsignal(sig) is not handler and handler is not None:
                    signal.signal(sig, handler)
            except (OSError, ValueError, TypeError):
                pass
        self.warnings.filters[:] = self.filters  # type: ignore[index]
        cache = sys.modules.get("linecache")
        if cache is not None:
            # The program file is rewritten for every variant under the same name.
            cache.clearcache()
        self.decimal.setcontext(self.decimal_context.copy())
        try:
            import atexit

            atexit._clear()
        except Exception:  # noqa: BLE001
            pass
        import gc

        gc.enable()
        for d, before in self.scratch.items():
            try:
                for name in set(os.listdir(d)) - before:
                    _remove_tree(os.path.join(d, name))
            except OSError:
                pass


class _Child:
    def __init__(self, work, report_fd, devnull, scratch=()):
        self.work = work
        self.report_fd = report_fd
        self.devnull = devnull
        self.compiled = {}
        self.state = _State(scratch)
        self.run_dir_ready = False
        self.held = []
        self.sent_at = time.monotonic()

    def report(self, line, now=True):
        """Send a line to the parent; ``now=False`` may hold it for a few milliseconds
        (with others), so that the parent is not woken for every ordinary failure."""
        self.held.append(line + "\n")
        if now or time.monotonic() - self.sent_at > _HOLD_S:
            self.flush()

    def flush(self):
        if not self.held:
            return
        data = "".join(self.held).encode()
        self.held = []
        self.sent_at = time.monotonic()
        try:
            os.write(self.report_fd, data)
        except OSError:
            os._exit(3)

    def code_of(self, text, path, offset):
        key = (text, offset)
        code = self.compiled.get(key)
        if code is None:
            code = compile("\n" * offset + text, path, "exec")
            self.compiled[key] = code
        return code

    def run_variant(self, prefix, rest, cpu):
        """Run prefix + rest as __main__; return (outcome code, exception name)."""
        import io
        import types

        # The same directory (made afresh) for every variant: the program file keeps one
        # path, so code compiled once stays valid for inspect and tracebacks.
        run_dir = os.path.join(self.work, "run")
        if not self.run_dir_ready:
            os.mkdir(run_dir)
            self.run_dir_ready = True
        os.chdir(run_dir)
        path = os.path.join(run_dir, "prog.py")
        text = prefix + rest
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            if "__future__" in prefix:
                codes = [self.code_of(text, path, 0)]
            else:
                codes = [
                    self.code_of(prefix, path, 0),
                    self.code_of(rest, path, prefix.count("\n")),
                ]
        except SyntaxError:
            return "F", "SyntaxError"
        except (ValueError, MemoryError, RecursionError) as e:
            return "F", type(e).__name__
        module = types.ModuleType("__main__")
        module.__file__ = path
        module.__dict__["__builtins__"] = builtins
        threading = sys.modules.get("threading")
        before = set(threading.enumerate()) if threading is not None else set()
        sys.modules["__main__"] = module
        sys.argv[:] = [path]
        if sys.path:
            sys.path[0] = run_dir
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace"
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False),
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
        # Every variant draws fresh random numbers (random is not imported otherwise).
        random = sys.modules.get("random")
        if random is not None:
            random.seed()
        outcome, exc = "P", ""
        try:
            signal.signal(signal.SIGPROF, _on_cpu_limit)
            # Repeats every 50 ms of CPU: a variant that swallows the first one gets more.
            signal.setitimer(signal.ITIMER_PROF, cpu, 0.05)
            _ARMED[0] = True
            for code in codes:
                exec(code, module.__dict__)
            threading = sys.modules.get("threading")  # a variant may have imported it
            if threading is not None:
                for t in threading.enumerate():
                    if t not in before and t is not threading.main_thread() and not t.daemon:
                        t.join()
        except _CpuLimit:
            outcome, exc = "T", "CPUTimeLimit"
        except SystemExit:
            outcome, exc = "X", "SystemExit"
        except MemoryError:
            outcome, exc = "M", "MemoryError"
        except BaseException as e:  # noqa: BLE001 - every failure of a variant is an outcome
            outcome, exc = "F", type(e).__name__
        finally:
            _ARMED[0] = False
            try:
                signal.setitimer(signal.ITIMER_PROF, 0)
                signal.signal(signal.SIGPROF, signal.SIG_IGN)
                signal.setitimer(signal.ITIMER_REAL, 0)
            except BaseException:  # noqa: BLE001
                pass
        # A closed or replaced stream may fail to flush: the outcome stands.
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
        return outcome, exc

    def clean(self):
        try:
            self.state.restore(self.work)
            for fd in (0, 1, 2):
                os.dup2(self.devnull, fd)
            os.chdir(self.work)
        except BaseException:  # noqa: BLE001 - cannot vouch for the next variant
            self.flush()
            os._exit(4)
        run_dir = os.path.join(self.work, "run")
        try:
            # Only the program file in it: the next variant overwrites it.
            if os.listdir(run_dir) == ["prog.py"] and not os.path.islink(run_dir):
                return
        except OSError:
            pass
        _remove_tree(run_dir)
        self.run_dir_ready = False

    def main(self, cands, outs, controls, cpus, start, retry):
        first = True
        for ci in range(start, len(cands)):
            cand = cands[ci]
            if _step(cand, outs[ci], controls[ci]) is None:
                continue
            if cand.get("isolate") and not first:
                break  # runs alone, in a fresh child
            self.state.watch(cand.get("modules", []))
            out = outs[ci]
            pending = retry if (first and retry is not None) else None
            while True:
                step = pending if pending is not None else _step(cand, out, controls[ci])
                pending = None
                if step is None:
                    break
                first = False
                if step == "c":
                    began = time.process_time()
                    code, exc = self.run_variant(
                        cand["body"], cand["rest"], float(cand.get("cpu_s", 1.0)) * 3
                    )
                    spent = time.process_time() - began
                    controls[ci] = code
                    if cand["plan"].get("calibrate"):
                        cpus[ci] = _calibrated(cand, spent)
                    self.report(f"{ci} c {code} {exc or '-'} {spent:.6f}")
                else:
                    v = cand["runs"][step]
                    code, exc = self.run_variant(
                        v.get("body", cand["body"]), v.get("rest", cand["rest"]), cpus[ci]
                    )
                    out[step] = code
                    # Reported before the clean-up: if restoring the state kills the
                    # child, the outcome is known and the next variant runs afresh. An
                    # ordinary failure may wait a little: were it lost with the child,
                    # the variant runs again in a fresh one, and a failure and a crash
                    # count alike.
                    self.report(f"{ci} {step} {code} {exc or '-'}", now=code != "F")
                self.clean()
            self.report(f"{ci} done", now=False)
            if cand.get("isolate"):
                break
        self.report("exit")
        os._exit(0)


def _calibrated(cand, control_cpu):
    """CPU-time limit of a variant once the control's own CPU time is known."""
    factor = float(cand.get("cpu_factor", 3.0))
    limit = max(float(cand.get("min_cpu_s", 0.02)), factor * control_cpu)
    return min(limit, float(cand.get("cpu_s", 1.0)))


# ---------------------------------------------------------------------------------------
# the parent: forks children, enforces wall-clock limits, prints the result


def _non_dumpable():
    """Other processes of the same user cannot open our /proc files (our stdout, memory).

    A process that changed its user id (the sandbox runner's children do) is already
    non-dumpable: the kernel then gives its /proc files to root. Only otherwise is
    prctl called, through ctypes, whose import costs a few milliseconds.
    """
    with contextlib.suppress(OSError):
        if os.stat("/proc/self/mem").st_uid not in (os.getuid(), os.geteuid()):
            return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001 - best effort: without it a variant could forge output
        pass


def _kill(pid):
    for target in (-pid, pid):
        with contextlib.suppress(OSError):
            os.kill(target, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


def _first_open(cands, outs, controls, start):
    for ci in range(start, len(cands)):
        if _step(cands[ci], outs[ci], controls[ci]) is not None:
            return ci
    return None


def _run_all(cands, work_root, devnull, deadline, scratch=()):
    import select  # loaded already in the sandbox runner, unlike selectors

    n = len(cands)
    outs = [list(c.get("out") or "-" * len(c["runs"])) for c in cands]
    controls = [str(c.get("control") or "-")[:1] for c in cands]
    cpus = [float(c.get("variant_cpu_s") or c.get("cpu_s", 1.0)) for c in cands]
    excs = [{} for _ in range(n)]
    children = [0] * n
    stop = ""
    retry = None  # (candidate, step) to run first in the next child
    start = 0
    spawned = 0
    while True:
        start = _first_open(cands, outs, controls, start) if retry is None else retry[0]
        if start is None:
            break
        if time.monotonic() >= deadline:
            stop = "budget"
            break
        spawned += 1
        work = os.path.join(work_root, f"c{spawned}")
        os.mkdir(work)
        r, w = os.pipe()
        first_retry = retry[1] if retry is not None else None
        retry = None
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.setpgid(0, 0)
                os.close(r)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.chdir(work)
                _Child(work, w, devnull, scratch).main(
                    cands, outs, controls, cpus, start, first_retry
                )
            except BaseException:  # noqa: BLE001
                pass
            os._exit(2)
        os.close(w)
        children[start] += 1
        poller = select.poll()
        poller.register(r, select.POLLIN)
        buf = b""
        reported = False
        current = start
        last = time.monotonic()
        ended = ""
        while not ended:
            wall = float(cands[current].get("wall_s", 2.0))
            now = time.monotonic()
            limit = min(last + wall, deadline)
            if now >= limit:
                ended = "T" if last + wall <= deadline else "budget"
                break
            if not poller.poll((limit - now) * 1000.0):
                continue
            chunk = os.read(r, 65536)
            if not chunk:
                ended = "C"
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                parts = line.decode("ascii", "replace").split(" ")
                last = time.monotonic()
                if parts[0] == "exit":
                    ended = "exit"
                    break
                if not parts[0].isdigit() or int(parts[0]) >= n:
                    continue
                ci = int(parts[0])
                reported = True
                if parts[1:2] == ["done"]:
                    current = min(ci + 1, n - 1)
                    continue
                current = ci
                if len(parts) >= 4 and parts[1] == "c":
                    controls[ci] = parts[2][:1]
                    excs[ci]["c"] = parts[3]
                    if len(parts) >= 5 and cands[ci]["plan"].get("calibrate"):
                        with contextlib.suppress(ValueError):
                            cpus[ci] = _calibrated(cands[ci], float(parts[4]))
                elif len(parts) >= 4 and parts[1].isdigit():
                    idx = int(parts[1])
                    if idx < len(outs[ci]):
                        outs[ci][idx] = parts[2][:1]
                        excs[ci][idx] = parts[3]
        os.close(r)
        _kill(pid)
        _remove_tree(work)
        if ended == "exit":
            continue
        if ended == "budget":
            stop = "budget"
            break
        # The child hung or died while running the next step of the first open candidate.
        ci = _first_open(cands, outs, controls, current)
        if ci is None:
            continue
        step = (
            first_retry
            if (not reported and first_retry is not None)
            else _step(cands[ci], outs[ci], controls[ci])
        )
        if reported or step is None:
            if step is not None:
                retry = (ci, step)  # run it again in a fresh child before it counts
            continue
        if step == "c":
            controls[ci] = ended
        else:
            outs[ci][step] = ended
            excs[ci][step] = "WallTimeLimit" if ended == "T" else "ChildDied"
    results = []
    for ci, cand in enumerate(cands):
        item = {
            "key": cand["key"],
            "out": "".join(outs[ci]),
            "control": controls[ci],
            "children": children[ci],
            "variant_cpu_s": round(cpus[ci], 6),
        }
        null = cand["plan"].get("null")
        if null is not None and null in excs[ci]:
            item["null_exc"] = excs[ci][null]
        if excs[ci].get("c", "-") != "-":
            item["control_exc"] = excs[ci]["c"]
        if stop and _step(cand, outs[ci], controls[ci]) is not None:
            item["stop"] = stop
        results.append(item)
    return results


def _main(payload):
    data = json.loads(zlib.decompress(binascii.a2b_base64(payload)).decode("utf-8"))
    deadline = time.monotonic() + float(data.get("budget_s", 5.0))
    _non_dumpable()
    import gc

    # Children are forked from here: objects that exist now are left out of every
    # collection, so a child's garbage collector does not touch (and copy) their pages.
    gc.collect()
    gc.freeze()
    devnull = os.open(os.devnull, os.O_RDWR)
    work_root = os.path.join(os.getcwd(), "strength")
    os.mkdir(work_root)
    try:
        results = _run_all(
            data["candidates"], work_root, devnull, deadline, data.get("scratch", ())
        )
    finally:
        # The sandbox vouches for a job only when it left no directory behind.
        _remove_tree(work_root)
    sys.stdout.write(MARKER + json.dumps(results, separators=(",", ":")) + "\n")
    sys.stdout.flush()
