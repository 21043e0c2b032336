"""A minimal OpenAI-compatible HTTP server over any `LLM` (for tests and local use).

Serves `POST /v1/completions`, `POST /v1/chat/completions` and `GET /v1/models` on a
threaded `http.server`. Requests are answered one at a time (local backends are not
thread-safe); bind to 127.0.0.1 unless you mean to share the model.

A chat whose last message is the assistant's is continued only when the request
sets `continue_final_message` (as vLLM does); otherwise that message is a finished
turn and the model answers in a new one. `honour_continue=False` ignores the flag,
the way llama.cpp's server does, so clients can be tested against both kinds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from selfalign.llm.base import LLM, Prompt, SamplingParams, is_prefill

logger = logging.getLogger(__name__)


class OpenAIHandler(BaseHTTPRequestHandler):
    """Answers the two generation endpoints with the server's `llm`."""

    server: OpenAIServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if self.path.rstrip("/") != "/v1/models":
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        model = {"id": self.server.model_name, "object": "model", "owned_by": "selfalign"}
        self.send_json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        route = self.path.rstrip("/")
        if route not in ("/v1/completions", "/v1/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            chat = route.endswith("chat/completions")
            prompt: Prompt = self.server.chat_prompt(body) if chat else body["prompt"]
            stop = body.get("stop") or []
            params = SamplingParams(
                temperature=float(body.get("temperature", 1.0)),
                top_p=float(body.get("top_p", 1.0)),
                max_tokens=int(body.get("max_tokens", 16)),
                n=int(body.get("n", 1)),
                stop=tuple([stop] if isinstance(stop, str) else stop),
                seed=body.get("seed"),
                repetition_penalty=float(body.get("repetition_penalty", 1.0)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            self.send_json(400, {"error": {"message": f"bad request: {exc}"}})
            return
        with self.server.lock:
            (generations,) = self.server.llm.generate([prompt], params)
        choices = []
        for i, g in enumerate(generations):
            choice: dict[str, Any] = {"index": i, "finish_reason": g.finish_reason}
            if chat:
                choice["message"] = {"role": "assistant", "content": g.text}
            else:
                choice["text"] = g.text
            choices.append(choice)
        self.send_json(
            200,
            {
                "id": f"cmpl-{time.monotonic_ns()}",
                "object": "chat.completion" if chat else "text_completion",
                "model": body.get("model", self.server.model_name),
                "choices": choices,
                "usage": {"completion_tokens": sum(g.completion_tokens for g in generations)},
            },
        )

    def send_json(
        self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(data).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


class OpenAIServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` holding the model it serves."""

    daemon_threads = True

    def __init__(
        self,
        llm: LLM,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = "selfalign",
        handler: type[OpenAIHandler] = OpenAIHandler,
        *,
        honour_continue: bool = True,
        tokenizer: Any = None,
    ) -> None:
        super().__init__((host, port), handler)
        self.llm = llm
        self.model_name = model_name
        self.lock = threading.Lock()
        self.honour_continue = honour_continue
        """Whether `continue_final_message` is obeyed (vLLM) or ignored (llama.cpp)."""
        self.tokenizer = tokenizer if tokenizer is not None else getattr(llm, "tokenizer", None)
        """Renders a chat whose assistant message is a finished turn (the llm's own if any)."""

    def chat_prompt(self, body: dict[str, Any]) -> Prompt:
        """The prompt for a chat request: its messages, or, when a final assistant message
        is not to be continued, the chat template's text with that turn closed and a new
        one opened. Raises ValueError for a request vLLM would refuse too."""
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list")
        # A server that ignores the extension ignores its checks too.
        continue_final = self.honour_continue and bool(body.get("continue_final_message"))
        if continue_final and body.get("add_generation_prompt", True):
            raise ValueError(
                "continue_final_message and add_generation_prompt cannot both be set; "
                "send add_generation_prompt: false"
            )
        if continue_final and not is_prefill(messages):
            raise ValueError("continue_final_message needs a final assistant message")
        if not is_prefill(messages) or continue_final:
            # The llm continues a final assistant message itself.
            return messages
        if self.tokenizer is None:
            raise ValueError(
                "this server has no tokenizer to answer after a finished assistant turn; "
                "pass tokenizer= to OpenAIServer"
            )
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"
