"""The `llm` proposer: any OpenAI-compatible chat endpoint edits `train.py`.

It sends `program.md` (the rules), the incumbent `train.py`, the ledger so far and the
tail of the last failure's log, and expects back either a whole new file in a
```python block or a unified diff in a ```diff block, plus a one-line `DESCRIPTION:`.
The answer is applied and vetted (parses, imports no evaluator, reads no held-out seeds,
keeps the tunable block) before the runner commits it; anything unusable raises
`Rejected`, which the loop logs as a `rejected` row before going on.

Works with vLLM, ollama, llama.cpp and hosted endpoints (`--base-url`, `--model`, key
from `OPENAI_API_KEY`; local servers need none). Architecture note: only
`robo_agent/agent/` imports `openai` at module level; this module imports it lazily
inside `_chat`, so the research package works without the `llm` extra.
"""

from __future__ import annotations

import os
import re
from typing import Any

from robo_agent.autoresearch.proposers import (
    Context,
    Proposal,
    Proposer,
    ProposerUnavailable,
    Rejected,
)

from robo_agent.core.research_source import SourceError, vet_train_source

SYSTEM = (
    "You are a reinforcement-learning research engineer improving a training script. "
    "Follow the rules in program.md exactly. Change only train.py. Answer with one line "
    "'DESCRIPTION: <what you changed and why>' followed by either the complete new "
    "train.py in a ```python block or a unified diff against it in a ```diff block."
)
MAX_LEDGER_ROWS = 40
_BLOCK = re.compile(r"```(?P<lang>[\w+-]*)[ \t]*\n(?P<body>.*?)```", re.DOTALL)


def _ledger_text(ctx: Context) -> str:
    from robo_agent.core.ledger import HEADER

    rows = ctx.rows[-MAX_LEDGER_ROWS:]
    return HEADER + "".join(r.to_line() for r in rows)


def build_messages(ctx: Context) -> list[dict[str, str]]:
    """The chat messages for one proposal."""
    user = (
        f"# program.md\n{ctx.program}\n\n"
        f"# current train.py (the incumbent, score {ctx.incumbent.score:.3f})\n"
        f"```python\n{ctx.incumbent_source}```\n\n"
        f"# results.tsv (most recent {MAX_LEDGER_ROWS} rows)\n{_ledger_text(ctx)}\n"
        f"# last failure's log tail\n{ctx.last_failure or '(none)'}\n\n"
        f"Propose trial {ctx.trial}."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def apply_diff(source: str, diff: str) -> str:
    """Apply a unified diff to train.py; `Rejected` if a hunk's lines are not found.

    Hunks are located by their content (context and removed lines), not by the line
    numbers in `@@` headers, which language models often get wrong; a hunk whose old
    lines occur more than once is placed at the occurrence nearest its stated line.
    """
    lines = source.splitlines()
    hunks = _hunks(diff)
    if not hunks:
        raise Rejected("the diff has no hunks")
    offset = 0
    for number, (stated, old, new) in enumerate(hunks, start=1):
        if not old:
            raise Rejected(f"hunk {number} has no context or removed lines to anchor it")
        starts = [i for i in range(len(lines) - len(old) + 1) if lines[i : i + len(old)] == old]
        if not starts:
            raise Rejected(f"the diff does not apply to train.py: hunk {number} not found")
        at = min(starts, key=lambda i: abs(i - (stated - 1 + offset)))
        lines[at : at + len(old)] = new
        offset += len(new) - len(old)
    return "\n".join(lines) + "\n"


def _hunks(diff: str) -> list[tuple[int, list[str], list[str]]]:
    hunks: list[tuple[int, list[str], list[str]]] = []
    current: tuple[int, list[str], list[str]] | None = None
    for line in diff.splitlines():
        if line.startswith("@@"):
            m = re.match(r"@@ -(\d+)", line)
            current = (int(m.group(1)) if m else 1, [], [])
            hunks.append(current)
        elif current is None or line.startswith(("--- ", "+++ ", "diff --git", "index ")):
            continue
        elif line.startswith("-"):
            current[1].append(line[1:])
        elif line.startswith("+"):
            current[2].append(line[1:])
        elif line.startswith(" ") or line == "":
            current[1].append(line[1:])
            current[2].append(line[1:])
        # "\ No newline at end of file" and other markers are ignored
    return hunks


def parse_answer(text: str, source: str) -> tuple[str, str]:
    """(new train.py, description) from a model's answer; `Rejected` if unusable."""
    if not text or not text.strip():
        raise Rejected("empty answer")
    description = ""
    for line in text.splitlines():
        if line.strip().upper().startswith("DESCRIPTION:"):
            description = line.split(":", 1)[1].strip()
            break
    blocks = list(_BLOCK.finditer(text))
    diffs = [b["body"] for b in blocks if b["lang"] in ("diff", "patch", "udiff")]
    files = [b["body"] for b in blocks if b["lang"] in ("python", "py", "")]
    if diffs:
        new = apply_diff(source, diffs[0])
    elif files and not files[0].lstrip().startswith(("--- ", "diff --git")):
        new = files[0]
    elif files:
        new = apply_diff(source, files[0])
    elif re.search(r"^--- .*\n\+\+\+ .*\n@@", text, re.MULTILINE):
        new = apply_diff(source, text[text.index("--- ") :])
    else:
        raise Rejected("the answer holds neither a ```python file nor a ```diff")
    if new.strip() == source.strip():
        raise Rejected("the answer does not change train.py")
    return new, description or "llm edit (no description given)"


class LLMProposer(Proposer):
    """Asks an OpenAI-compatible chat endpoint for a new train.py."""

    name = "llm"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        temperature: float = 0.7,
    ) -> None:
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self.model = model or os.environ.get("OPENAI_MODEL")
        if not self.model:
            raise ProposerUnavailable("the llm proposer needs --model (or OPENAI_MODEL)")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "none"
        self.timeout = timeout
        self.temperature = temperature

    def _client(self) -> Any:
        try:
            import openai  # lazy: the llm extra is optional for the research package
        except ImportError:
            raise ProposerUnavailable(
                "the llm proposer needs the openai package: pip install 'robo_agent[llm]'"
            ) from None
        return openai, openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=1
        )

    def check(self) -> None:
        """Fail fast when the endpoint cannot be reached at all (`GET /models`)."""
        openai, client = self._client()
        where = self.base_url or "the default OpenAI endpoint"
        try:
            client.with_options(timeout=10.0, max_retries=0).models.list()
        except openai.APIConnectionError as err:
            raise ProposerUnavailable(f"LLM endpoint {where} is unreachable: {err}") from None
        except openai.AuthenticationError as err:
            raise ProposerUnavailable(f"LLM endpoint {where} refused the API key: {err}") from None
        except openai.APIStatusError:
            pass  # some servers do not list models; the chat call will tell

    def _chat(self, messages: list[dict[str, str]]) -> str:
        openai, client = self._client()
        where = self.base_url or "the default OpenAI endpoint"
        try:
            response = client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,  # type: ignore[arg-type]
            )
        except openai.APIConnectionError as err:
            raise ProposerUnavailable(f"LLM endpoint {where} is unreachable: {err}") from None
        except openai.AuthenticationError as err:
            raise ProposerUnavailable(f"LLM endpoint {where} refused the API key: {err}") from None
        except openai.NotFoundError as err:
            raise ProposerUnavailable(
                f"LLM endpoint {where}: model '{self.model}' not found: {err}"
            ) from None
        except openai.APIStatusError as err:
            raise Rejected(f"LLM endpoint error {err.status_code}: {err.message}") from None
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""

    def propose(self, ctx: Context) -> Proposal:
        answer = self._chat(build_messages(ctx))
        source, description = parse_answer(answer, ctx.incumbent_source)
        try:
            vet_train_source(source)
        except SourceError as err:
            raise Rejected(f"invalid train.py: {err}") from None
        return Proposal(source, description, {})


def describe_endpoint(proposer: Any) -> str:
    return f"{getattr(proposer, 'model', '?')} at {getattr(proposer, 'base_url', None) or 'OpenAI'}"
