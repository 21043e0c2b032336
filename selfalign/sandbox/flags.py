"""The one place that states every isolation flag of a sandbox container."""

from __future__ import annotations

from .config import SandboxConfig

LABEL = "selfalign.sandbox"
RUNNER_PATH = "/opt/selfalign/job_runner.py"
WORK_DIR = "/work"
CONTAINER_HEADROOM_MB = 256
# Seconds the runner may spend after a job (killing what is left, waiting for its
# janitor, deleting files) before it must write the verdict; it reports "dirty"
# rather than overrun it. The host's watchdog grace is built on it (_pool.py).
CLEANUP_BUDGET_S = 5.0


def cpu_shares(cpus: float) -> int:
    """docker --cpu-shares for a weight of ``cpus`` CPUs (1024 = one CPU; docker allows >= 2)."""
    return max(2, round(1024 * cpus))


def runner_args(config: SandboxConfig, prog_uid: int | None, sched: str = "idle") -> list[str]:
    """Arguments of the in-sandbox runner (sandbox/job_runner.py)."""
    args = [
        "--timeout",
        f"{config.timeout_s:g}",
        "--cleanup-s",
        f"{CLEANUP_BUDGET_S:g}",
        "--memory-mb",
        str(config.memory_mb),
        "--output-limit",
        str(config.output_limit_bytes),
        "--tail-bytes",
        str(config.tail_bytes),
        "--file-size-mb",
        str(config.file_size_mb),
        "--nofile",
        str(config.open_files),
        # RLIMIT_NPROC of the program's user, below the container's pids limit so
        # that a fork bomb leaves room for the runner and its janitor.
        "--nproc",
        str(max(8, config.pids_limit - 16)),
        "--work-root",
        WORK_DIR,
        # Programs run SCHED_IDLE inside a container (so they cannot starve the
        # runner), or with nice 10 where there is no cgroup around them (bwrap).
        "--sched",
        sched,
        # Verdicts ready together travel together (one write through docker attach
        # instead of several); half the pipeline stays queued in the runner
        # meanwhile, so it never waits for the host. Depth 1 or 2: one verdict a write.
        "--flush-every",
        str(max(1, config.pipeline_depth // 2)),
    ]
    args += ["--same-uid"] if prog_uid is None else ["--uid", str(prog_uid)]
    return args


def docker_run_args(
    config: SandboxConfig,
    *,
    image: str,
    name: str,
    prog_uid: int,
    pool_id: str,
    owner_pid: int,
    runtime: str | None,
) -> list[str]:
    """The complete `docker run` command line of one warm sandbox container.

    Every flag that isolates the program is here, with the reason it is here.
    """
    # memory_mb caps each program (RLIMIT_AS, so a single greedy program gets a clean
    # MemoryError); the container gets headroom above it for the runner and the
    # janitor, so several greedy processes together meet the OOM killer instead.
    mem = f"{config.memory_mb + CONTAINER_HEADROOM_MB}m"
    argv = [
        "docker",
        "run",
        # Attached stdin/stdout carry the job protocol; when our end closes (pool
        # exit, or the parent process dies) the runner reads EOF and exits.
        "-i",
        # The container disappears with its runner: nothing to collect later.
        "--rm",
        "--name",
        name,
        # Labels let `selfalign sandbox clean` find leftovers of any pool, and the
        # pool find its own.
        "--label",
        f"{LABEL}=1",
        "--label",
        f"{LABEL}.pool={pool_id}",
        "--label",
        f"{LABEL}.owner_pid={owner_pid}",
        # No network interface but loopback: programs cannot reach anything.
        "--network",
        "none",
        # The image cannot be modified: no program can change the runner or python.
        "--read-only",
        # The only writable places: size-capped tmpfs, no devices, no setuid
        # binaries, nothing executable; all emptied after every job.
        "--tmpfs",
        f"{WORK_DIR}:rw,nosuid,nodev,noexec,size={config.tmpfs_mb}m,nr_inodes=16384,mode=1777",
        "--tmpfs",
        "/tmp:rw,nosuid,nodev,noexec,size=16m,nr_inodes=4096,mode=1777",
        # /dev/shm (POSIX shared memory, semaphores) small as well.
        "--shm-size",
        "16m",
        # Memory without swap: memory+swap equal to memory means no swap at all.
        "--memory",
        mem,
        "--memory-swap",
        mem,
        # Fork bombs stop at the container's process limit.
        "--pids-limit",
        str(config.pids_limit),
        # CPU time is shared by weight, never capped by a CFS quota (--cpus): once a
        # fork bomb's ~240 runnable processes had used up the quota, the kernel left
        # the runner runnable but unscheduled (Linux 6.18: no CPU at all for 145 s;
        # lifting the quota freed it at once), so it could neither time the job out
        # nor even die on `docker rm -f`, and the host replaced a healthy sandbox.
        # A weight still shares the CPUs fairly among busy containers, and
        # RLIMIT_CPU and the wall-clock limit bound what one program takes.
        "--cpu-shares",
        str(cpu_shares(config.cpus)),
        # Drop every capability, then add back only what the runner itself uses:
        "--cap-drop",
        "ALL",
        # SETUID/SETGID: the runner switches each job (and its janitor) to the
        # program's own user; the program, once switched, has no capability left.
        "--cap-add",
        "SETUID",
        "--cap-add",
        "SETGID",
        # No setuid binary or file capability can raise privileges again.
        "--security-opt",
        "no-new-privileges",
        # Private IPC namespace: shared memory cannot leak between containers.
        "--ipc",
        "private",
        # The runner is PID 1 (reaps orphans; ignores signals it has no handler for).
        # Runner as root inside (its capabilities are the two above); programs run as
        # prog_uid, a random uid per container: they cannot signal or trace the
        # runner, and RLIMIT_NPROC counts only that container's programs.
        "--user",
        "0:0",
        "--workdir",
        WORK_DIR,
        "--hostname",
        "sandbox",
        # The protocol goes over attach; logs would only copy it to disk.
        "--log-driver",
        "none",
        # Quick `docker stop`: the runner exits on SIGTERM.
        "--stop-timeout",
        "2",
    ]
    # There is deliberately no -v/--mount: no host path is visible inside.
    if runtime:
        # gVisor (runsc) puts a user-space kernel between the program and the host.
        argv += ["--runtime", runtime]
    argv += [image, "python3", "-I", RUNNER_PATH, *runner_args(config, prog_uid)]
    return argv
