"""Fixtures for the backend tests: the real 135M model and an OpenAI-compatible server over it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from selfalign.llm.serve import OpenAIHandler, OpenAIServer


@pytest.fixture(scope="session")
def real_llm() -> Any:
    """The embedded 135M model on CPU, loaded once for the whole session."""
    from selfalign.llm import ModelConfig, load_llm

    return load_llm(ModelConfig(device="cpu", engine_batch_size=8))


class FlakyHandler(OpenAIHandler):
    """Fails the first requests with the statuses queued on the server, then answers."""

    def do_POST(self) -> None:  # noqa: N802
        failures: list[int] = self.server.failures  # type: ignore[attr-defined]
        if failures:
            status = failures.pop(0)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_json(
                status,
                {"error": {"message": f"injected {status}"}},
                {"Retry-After": "0"} if status == 429 else None,
            )
            return
        super().do_POST()


@pytest.fixture(scope="session")
def server(real_llm: Any) -> Iterator[OpenAIServer]:
    """A real HTTP server on 127.0.0.1 (ephemeral port) serving the real model."""
    srv = OpenAIServer(real_llm, handler=FlakyHandler, model_name="smollm2")
    srv.failures = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
