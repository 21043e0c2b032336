"""Config validation, records and the flag builder (no Docker needed)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from selfalign.sandbox import ExecResult, Program, SandboxConfig
from selfalign.sandbox._pool import WATCHDOG_GRACE_S
from selfalign.sandbox.bwrap_pool import bwrap_argv
from selfalign.sandbox.flags import CLEANUP_BUDGET_S, docker_run_args, runner_args
from selfalign.sandbox.image import image_tag, sandbox_hash


def test_every_field_has_help() -> None:
    for f in fields(SandboxConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text"


@pytest.mark.parametrize("kwargs, hint", [
    ({"workers": 0}, "--workers"),
    ({"timeout_s": 0}, "--timeout"),
    ({"memory_mb": 10}, "--memory-mb"),
    ({"backend": "podman"}, "--backend"),
    ({"pids_limit": 2}, "pids_limit"),
])
def test_bad_config_says_how_to_fix(kwargs: dict, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        SandboxConfig(**kwargs)


def test_default_workers_is_cpu_count() -> None:
    import os

    assert SandboxConfig().workers == (os.cpu_count() or 1)


def test_exec_result_round_trip() -> None:
    r = ExecResult(id="x", status="fail", duration_s=0.5, exit_code=1,
                   exception="AssertionError", stdout_tail="o", stderr_tail="e")
    assert ExecResult.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match="unknown status"):
        ExecResult.from_dict({**r.to_dict(), "status": "weird"})
    assert Program("a", "pass") == Program("a", "pass")


def test_docker_flags_state_every_isolation() -> None:
    cfg = SandboxConfig(memory_mb=512, pids_limit=64, cpus=0.5, tmpfs_mb=32)
    argv = docker_run_args(cfg, image="img:1", name="n", prog_uid=123456, pool_id="p",
                           owner_pid=1, runtime=None)
    joined = " ".join(argv)
    for flag in ["--network none", "--read-only", "--memory 768m", "--memory-swap 768m",
                 "--pids-limit 64", "--cpu-shares 512", "--cap-drop ALL",
                 "--security-opt no-new-privileges", "--label selfalign.sandbox=1",
                 "--rm", "size=32m", "--uid 123456"]:
        assert flag in joined, flag
    caps = [argv[i + 1] for i, a in enumerate(argv) if a == "--cap-add"]
    assert sorted(caps) == ["SETGID", "SETUID"]
    assert "-v" not in argv and "--volume" not in argv and "--mount" not in argv
    assert "--privileged" not in argv
    # A CPU quota let a fork bomb starve the runner for minutes (flags.py): never again.
    assert "--cpus" not in argv and "--cpu-quota" not in argv
    with_runsc = docker_run_args(cfg, image="img:1", name="n", prog_uid=1, pool_id="p",
                                 owner_pid=1, runtime="runsc")
    assert "--runtime" in with_runsc


def test_watchdog_outlasts_the_runner_cleanup_budget() -> None:
    """The host gives up on a runner only well after the runner's own clean-up budget
    is spent, so a healthy runner still cleaning up a fork bomb is never replaced."""
    for prog_uid in (123456, None):  # docker and unprivileged bwrap
        args = runner_args(SandboxConfig(), prog_uid)
        assert float(args[args.index("--cleanup-s") + 1]) == CLEANUP_BUDGET_S
    assert WATCHDOG_GRACE_S >= CLEANUP_BUDGET_S + 3


def test_bwrap_flags() -> None:
    argv = bwrap_argv(SandboxConfig(), Path("/r"), Path("/x/job_runner.py"), 4242)
    assert "--unshare-net" in argv and "--die-with-parent" in argv
    assert argv[argv.index("--ro-bind") + 1:argv.index("--ro-bind") + 3] == ["/r", "/"]
    unpriv = bwrap_argv(SandboxConfig(), Path("/r"), Path("/x/job_runner.py"), None)
    assert "--unshare-all" in unpriv and "--same-uid" in unpriv


def test_image_tag_follows_sandbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selfalign.sandbox.image import sandbox_dir

    src = sandbox_dir()
    for p in src.iterdir():
        if p.is_file():
            (tmp_path / p.name).write_bytes(p.read_bytes())
    monkeypatch.setenv("SELFALIGN_SANDBOX_DIR", str(tmp_path))
    before = image_tag()
    assert before == f"selfalign-sandbox:{sandbox_hash(src)[:12]}"
    runner = tmp_path / "job_runner.py"
    runner.write_text(runner.read_text() + "\n# changed\n")
    assert image_tag() != before
