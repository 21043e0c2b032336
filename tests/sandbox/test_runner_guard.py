"""The runner refuses to run where its clean-up would reach processes that are not its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from selfalign.sandbox.image import runner_path


def test_same_uid_is_refused_outside_a_pid_namespace_of_its_own(tmp_path: Path) -> None:
    # With --same-uid the clean-up after each job kills every process it can see. Run by
    # hand on a host (not as PID 1), the runner must stop before its first clean-up,
    # which is replaced here by a failure so that a missing guard kills nothing.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('runner', {str(runner_path())!r})\n"
        "runner = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(runner)\n"
        "def cleanup(*args, **kwargs):\n"
        "    raise SystemExit('the clean-up ran')\n"
        "runner._janitor = runner._survivors = runner._sweep = cleanup\n"
        f"args = ['--same-uid', '--work-root', {str(tmp_path)!r}, '--scratch', '']\n"
        "sys.exit(runner.main(args))\n"
    )
    cp = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert cp.returncode == 2, cp.stderr
    assert b"only as PID 1 of its own PID namespace" in cp.stderr
