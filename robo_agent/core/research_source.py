"""Reading, editing and vetting `train.py` source text (pure: ast + re only).

`train.py` declares its tunable hyperparameters in one block of its config dataclass:

    # >>> tunable: proposers edit only the values in this block
    learning_rate: float = 1e-3  # log[1e-4, 3e-3]
    batch_size: int = 256  # int[64, 1024]
    tau: float = 0.05  # float[0.005, 0.2]
    n_envs: int = 4  # choice[1, 2, 4, 8]
    # <<< tunable

`parse_tunables` reads the block, `apply_values` rewrites values in it (and only there),
and `vet_train_source` rejects candidates that would break the research contract:
syntax errors, imports of the frozen evaluator or runner, pickle, or any reference to the
held-out seeds, the research settings or the ledger.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

BEGIN = "# >>> tunable"
END = "# <<< tunable"
_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<type>int|float|bool|str)\s*=\s*"
    r"(?P<value>[^#]+?)\s*#\s*(?P<kind>log|float|int|choice)\[(?P<range>[^\]]*)\]\s*(?P<rest>.*)$"
)

#: Modules a candidate may import from this package (the artifact writer); nothing else of ours.
ALLOWED_OWN_MODULES = frozenset(
    {"robo_agent.autoresearch.onnx_policy", "robo_agent.core.artifact", "robo_agent.policy",
     "robo_agent.sim"}
)
FORBIDDEN_MODULES = frozenset({"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"})
#: Text that only code peeking at the evaluation set-up would contain.
FORBIDDEN_TEXT = (
    "research.yaml",
    "results.tsv",
    "eval_seed",
    "held_out",
    "held-out",
    ".research/",
    "EVAL_SEED_BASE",
)


class SourceError(ValueError):
    """train.py cannot be parsed or breaks the research contract."""


@dataclass(frozen=True)
class Tunable:
    """One declared hyperparameter: current value and its search range."""

    name: str
    type: str
    value: Any
    kind: str  # log | float | int | choice
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    line: int = 0  # 0-based line index in the source

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(float(value)):
            return False
        if self.kind == "int" and int(value) != value:
            return False
        assert self.low is not None and self.high is not None
        return self.low <= float(value) <= self.high


def _block(lines: list[str]) -> tuple[int, int]:
    starts = [i for i, ln in enumerate(lines) if ln.strip().startswith(BEGIN)]
    ends = [i for i, ln in enumerate(lines) if ln.strip().startswith(END)]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise SourceError(f"train.py must contain exactly one '{BEGIN}' ... '{END}' block")
    return starts[0], ends[0]


def parse_tunables(source: str) -> list[Tunable]:
    """The declared hyperparameters, in order; `SourceError` on a malformed block."""
    lines = source.splitlines()
    start, end = _block(lines)
    found: list[Tunable] = []
    for i in range(start + 1, end):
        text = lines[i]
        if not text.strip() or text.strip().startswith("#"):
            continue
        m = _LINE.match(text)
        if not m:
            raise SourceError(
                f"train.py line {i + 1}: tunable lines look like "
                f"'name: float = 0.1  # float[0.0, 1.0]', got: {text.strip()}"
            )
        try:
            value = ast.literal_eval(m["value"].strip())
            bounds = ast.literal_eval(f"[{m['range']}]")
        except (ValueError, SyntaxError):
            raise SourceError(f"train.py line {i + 1}: value or range is not a literal") from None
        kind = m["kind"]
        if kind == "choice":
            tun = Tunable(m["name"], m["type"], value, kind, choices=tuple(bounds), line=i)
        else:
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise SourceError(
                    f"train.py line {i + 1}: range must be [low, high] with low < high"
                )
            if kind == "log" and bounds[0] <= 0:
                raise SourceError(f"train.py line {i + 1}: log range needs low > 0")
            tun = Tunable(
                m["name"], m["type"], value, kind, float(bounds[0]), float(bounds[1]), line=i
            )
        if not tun.contains(value):
            raise SourceError(f"train.py line {i + 1}: {tun.name} = {value!r} is outside its range")
        found.append(tun)
    if not found:
        raise SourceError("train.py declares no tunable hyperparameters")
    names = [t.name for t in found]
    if len(set(names)) != len(names):
        raise SourceError("train.py declares a tunable twice")
    return found


def _literal(value: Any, type_name: str) -> str:
    if type_name == "int":
        return str(int(value))
    if type_name == "float":
        return repr(float(value)) if abs(float(value)) >= 1e-3 or value == 0 else f"{value:.3e}"
    return repr(value)


def apply_values(source: str, values: dict[str, Any]) -> str:
    """`source` with the tunables in `values` set; only lines inside the block change."""
    tunables = {t.name: t for t in parse_tunables(source)}
    unknown = sorted(set(values) - set(tunables))
    if unknown:
        raise SourceError(f"unknown tunables: {unknown} (declared: {sorted(tunables)})")
    lines = source.splitlines(keepends=True)
    for name, value in values.items():
        tun = tunables[name]
        if tun.type == "int" and tun.kind != "choice":
            value = round(value)
        if not tun.contains(value):
            raise SourceError(f"{name} = {value!r} is outside its declared range")
        m = _LINE.match(lines[tun.line].rstrip("\n"))
        assert m is not None
        newline = "\n" if lines[tun.line].endswith("\n") else ""
        lines[tun.line] = (
            f"{m['indent']}{name}: {m['type']} = {_literal(value, tun.type)}  "
            f"# {m['kind']}[{m['range']}]{(' ' + m['rest']) if m['rest'] else ''}{newline}"
        )
    return "".join(lines)


def current_values(source: str) -> dict[str, Any]:
    return {t.name: t.value for t in parse_tunables(source)}


def vet_train_source(source: str) -> None:
    """Raise `SourceError` if a candidate train.py must not run; returns None when it may."""
    if not source.strip():
        raise SourceError("train.py is empty")
    try:
        tree = ast.parse(source, filename="train.py")
    except SyntaxError as err:
        raise SourceError(f"train.py does not parse: line {err.lineno}: {err.msg}") from None
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for mod in modules:
            root = mod.split(".")[0]
            if root in FORBIDDEN_MODULES:
                raise SourceError(f"train.py line {node.lineno}: imports {mod} (no pickle)")
            if mod.startswith("robo_agent.autoresearch") and not any(
                mod == ok or mod.startswith(ok + ".") for ok in ALLOWED_OWN_MODULES
            ):
                if isinstance(node, ast.ImportFrom) and mod == node.module:
                    # `from robo_agent.autoresearch import x` is judged by the names imported
                    continue
                raise SourceError(
                    f"train.py line {node.lineno}: imports {mod}; only the artifact writer "
                    "(robo_agent.autoresearch.onnx_policy) may be imported, never the evaluator"
                )
        if isinstance(node, ast.Call) and _is_call_to(node, "__import__", "import_module"):
            raise SourceError(f"train.py line {node.lineno}: dynamic imports are not allowed")
        if isinstance(node, ast.Call) and _is_call_to(node, "load") and _mentions_torch(node):
            if not any(
                k.arg == "weights_only"
                and isinstance(k.value, ast.Constant)
                and k.value.value is True
                for k in node.keywords
            ):
                raise SourceError(
                    f"train.py line {node.lineno}: torch.load needs weights_only=True (no pickle)"
                )
    lowered = source.lower()
    for text in FORBIDDEN_TEXT:
        if text.lower() in lowered:
            raise SourceError(
                f"train.py mentions '{text}': training must not read the held-out evaluation "
                "seeds, the research settings or the ledger"
            )
    parse_tunables(source)


def _is_call_to(node: ast.Call, *names: str) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in names
    return isinstance(func, ast.Attribute) and func.attr in names


def _mentions_torch(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and (func.value.id == "torch")
    )
