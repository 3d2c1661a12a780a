"""The llm proposer with the real `openai` client against a scripted OpenAI-compatible
HTTP server on 127.0.0.1 (no API key, no internet): a unified diff is applied, vetted,
committed and trained; an empty answer and an evaluator import are rejected and logged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from robo_agent.autoresearch.llm_proposer import LLMProposer, parse_answer
from robo_agent.autoresearch.proposers import Rejected
from robo_agent.autoresearch.runner import Runner
from robo_agent.autoresearch.workspace import Workspace

from robo_agent.core.research_source import current_values

pytestmark = [pytest.mark.research, pytest.mark.agent]

DIFF_ANSWER = """DESCRIPTION: raise the learning rate to learn faster within the budget
```diff
--- a/train.py
+++ b/train.py
@@ -1,1 +1,1 @@
-    learning_rate: float = 0.003  # log[0.0005, 0.01]
+    learning_rate: float = 0.002  # log[0.0005, 0.01]
```
"""
EVIL_ANSWER = """DESCRIPTION: peek at the evaluator
```python
{source}
from robo_agent.autoresearch.evaluate import evaluate
```
"""


class ScriptedServer:
    """Answers chat completions from a list, records every request body."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(
                    {
                        "object": "list",
                        "data": [
                            {"id": "scripted", "object": "model", "created": 0, "owned_by": "test"}
                        ],
                    }
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.requests.append(json.loads(self.rfile.read(length)))
                content = outer.answers.pop(0) if outer.answers else ""
                self._send({
                    "id": f"chatcmpl-{len(outer.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": "scripted",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })  # fmt: skip

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    yield


@pytest.mark.slow
def test_llm_round_trip_diff_kept_or_discarded_bad_answers_rejected(
    workspace: Path, no_api_key: None
) -> None:
    ws = Workspace(workspace)
    source = (workspace / "train.py").read_text()
    answers = [DIFF_ANSWER, "", EVIL_ANSWER.format(source=source)]
    with ScriptedServer(answers) as server:
        proposer = LLMProposer(base_url=server.url, model="scripted")
        Runner(ws, proposer, live=False).run(trials=3)
    rows = ws.ledger.rows()
    assert [(r.trial, r.proposer) for r in rows[1:]] == [(1, "llm"), (2, "llm"), (3, "llm")]
    first, empty, evil = rows[1:]
    assert first.status in ("keep", "discard")
    assert first.description.startswith("raise the learning rate")
    assert current_values(ws.repo.show(first.commit, "train.py"))["learning_rate"] == 0.002
    assert empty.status == "rejected" and "empty answer" in empty.description
    assert evil.status == "rejected" and "evaluator" in evil.description
    assert empty.commit == "" and evil.commit == ""
    # what the model was shown: program.md, the incumbent train.py, the ledger
    prompt = server.requests[0]["messages"][1]["content"]
    assert "# program.md" in prompt and "Only `train.py`" in prompt
    assert "# >>> tunable" in prompt and "baseline train.py" in prompt
    assert server.requests[0]["model"] == "scripted"
    assert ws.repo.dirty_files() == []


def test_parse_answer_forms() -> None:
    source = "a = 1\nb = 2\n"
    new, desc = parse_answer("DESCRIPTION: x\n```python\na = 1\nb = 3\n```", source)
    assert new == "a = 1\nb = 3\n" and desc == "x"
    patch = "```diff\n--- train.py\n+++ train.py\n@@ -2 +2 @@\n-b = 2\n+b = 5\n```"
    assert parse_answer(patch, source)[0] == "a = 1\nb = 5\n"
    with pytest.raises(Rejected, match="does not apply"):
        parse_answer("```diff\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-zzz\n+y\n```", source)
    with pytest.raises(Rejected, match="neither"):
        parse_answer("I would raise the learning rate.", source)
    with pytest.raises(Rejected, match="does not change"):
        parse_answer("```python\na = 1\nb = 2\n```", source)
