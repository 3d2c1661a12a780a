"""Fixtures for the agent tests.

- every test under tests/agent carries the `agent` marker;
- `scripted_llm`: a real OpenAI-compatible HTTP server on 127.0.0.1 that answers
  /v1/chat/completions from a script (canned tool calls, then a final message) and
  records every request, so the real `openai` client and our tool loop run unmodified.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.agent)


Step = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
"""A script step: {"tool_calls": [(name, args), ...]} or {"content": "..."}, or a function
of the request body returning one of those (to react to earlier tool results)."""


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool messages of a recorded request, parsed from JSON."""
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


class ScriptedLLM:
    """An OpenAI-compatible chat-completions endpoint that plays a script."""

    def __init__(self) -> None:
        self.script: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self._calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = owner._answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}
        self.requests.append(body)
        if not self.script:
            return 500, {"error": {"message": "script exhausted", "type": "server_error"}}
        step = self.script.pop(0)
        if callable(step):
            step = step(body)
        self._calls += 1
        message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
        if step.get("tool_calls"):
            message["tool_calls"] = [
                {
                    "id": f"call_{self._calls}_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for i, (name, args) in enumerate(step["tool_calls"])
            ]
        return 200, {
            "id": f"chatcmpl-{self._calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if step.get("tool_calls") else "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM()
    try:
        yield llm
    finally:
        llm.close()
