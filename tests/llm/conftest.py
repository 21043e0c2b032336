"""Fixtures for the backend tests: the real 135M model, OpenAI-compatible servers over it
(ours, obeying or ignoring `continue_final_message`), and llama.cpp's server."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from selfalign.llm.embedded import embedded_gguf_path
from selfalign.llm.serve import OpenAIHandler, OpenAIServer

from .llama_server import LlamaServer, llama_python, start_llama_server


@pytest.fixture(scope="session")
def real_llm() -> Any:
    """The embedded 135M model on CPU, loaded once for the whole session."""
    from selfalign.llm import ModelConfig, load_llm

    return load_llm(ModelConfig(device="cpu", engine_batch_size=8))


class FlakyHandler(OpenAIHandler):
    """Fails the first requests with the statuses queued on the server, then answers.

    Every request's path and body is recorded in ``server.requests``."""

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        self.server.requests.append((self.path, json.loads(raw or b"{}")))  # type: ignore[attr-defined]
        # The base handler reads the body again.
        self.rfile = io.BytesIO(raw)
        failures: list[int] = self.server.failures  # type: ignore[attr-defined]
        if failures:
            status = failures.pop(0)
            self.send_json(
                status,
                {"error": {"message": f"injected {status}"}},
                {"Retry-After": "0"} if status == 429 else None,
            )
            return
        super().do_POST()


def _serve(llm: Any, **kwargs: Any) -> Iterator[OpenAIServer]:
    srv = OpenAIServer(llm, handler=FlakyHandler, model_name="smollm2", **kwargs)
    srv.failures = []  # type: ignore[attr-defined]
    srv.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="session")
def server(real_llm: Any) -> Iterator[OpenAIServer]:
    """A real HTTP server on 127.0.0.1 (ephemeral port) serving the real model, continuing a
    final assistant message when asked to (like vLLM)."""
    yield from _serve(real_llm)


@pytest.fixture(scope="session")
def deaf_server(real_llm: Any) -> Iterator[OpenAIServer]:
    """The same server ignoring `continue_final_message` (like llama.cpp's)."""
    yield from _serve(real_llm, honour_continue=False)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama.cpp's OpenAI-compatible server (llama-cpp-python) serving the embedded GGUF.

    Skipped when its venv is not installed (`scripts/llama_wheel.sh venv`), unless
    SELFALIGN_REQUIRE_LLAMA=1 (CI), which fails instead."""
    python = llama_python()
    if python is None:
        message = (
            "llama.cpp server not installed: run `scripts/llama_wheel.sh venv` "
            "(or set SELFALIGN_LLAMA_PYTHON)"
        )
        if os.environ.get("SELFALIGN_REQUIRE_LLAMA") == "1":
            pytest.fail(f"SELFALIGN_REQUIRE_LLAMA=1 but the {message}")
        pytest.skip(message)
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with start_llama_server(python, embedded_gguf_path(), log) as llama:
        yield llama
