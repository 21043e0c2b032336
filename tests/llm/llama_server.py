"""Start llama.cpp's OpenAI-compatible server (llama-cpp-python) for the tests.

The server lives in a venv of its own, made by `scripts/llama_wheel.sh venv`
(`$SELFALIGN_CACHE/llama-venv`, or the python in `$SELFALIGN_LLAMA_PYTHON`), so
its pins never touch the project's. It serves the embedded GGUF on 127.0.0.1 and
ignores `continue_final_message`: the server the prefill strategies exist for.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from selfalign.llm.embedded import cache_root

# Loading a 100 MB GGUF takes a second or two; a cold disk and a busy machine far more.
STARTUP_LIMIT_S = 180.0


@dataclass
class LlamaServer:
    """A running llama.cpp server: its URL, its process and its log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def llama_python() -> Path | None:
    """The python of the llama.cpp venv, or None when it is not installed."""
    env = os.environ.get("SELFALIGN_LLAMA_PYTHON")
    python = Path(env) if env else cache_root() / "llama-venv" / "bin" / "python"
    if not python.is_file():
        return None
    check = subprocess.run(
        [str(python), "-c", "import llama_cpp.server"], capture_output=True, check=False
    )
    return python if check.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/models", timeout=5) as response:
            return bool(json.loads(response.read()).get("data"))
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return False


@contextlib.contextmanager
def start_llama_server(python: Path, gguf: Path, log: Path) -> Iterator[LlamaServer]:
    """Run `python -m llama_cpp.server` on ``gguf`` until the block ends; wait until it answers."""
    port = _free_port()
    command = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # One thread: the test machine's cores are shared, and the model is tiny.
        "--n_threads",
        "1",
        "--n_ctx",
        "4096",
        "--verbose",
        "False",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", process, log)
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while not _ready(server.base_url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp server exited with {process.returncode}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama.cpp server did not answer in {STARTUP_LIMIT_S:.0f}s:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
