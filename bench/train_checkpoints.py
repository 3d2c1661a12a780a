"""Run a research `train.py` and keep every artifact it writes, with its timings.

    python bench/train_checkpoints.py [--register panda_gym] TRAIN_PY [train.py args...]

Benchmark-only (`bench/train.py`'s time-to-95 % curve), so it lives here and not in the
trainer: `train.py` writes its artifact to `<out>/artifact` at every checkpoint
(`--checkpoint-seconds`), each time with provenance (CPU seconds of its process tree,
training wall-clock from the first env step with saving excluded, env steps, updates).
This wrapper runs `train.py` as `__main__` in this process, copies each of those
artifacts to `<out>/checkpoints/<env steps>/` and appends a line to
`<out>/checkpoints/index.jsonl`:

    {"artifact", "env_steps", "updates", "train_seconds", "process_seconds", "cpu_seconds"}

`process_seconds` counts from this process's start (imports and env start-up included).
The copy happens inside the trainer's save, so it is part of the saving time that
`train_seconds` leaves out. `--register MODULE` imports a module that registers the
task's Gymnasium ids first (panda-gym's tasks, for the same-env comparison with SB3).
"""

from __future__ import annotations

import time

START = time.monotonic()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import runpy  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def _out_folder(train_args: list[str]) -> Path:
    for i, arg in enumerate(train_args):
        if arg == "--out" and i + 1 < len(train_args):
            return Path(train_args[i + 1])
        if arg.startswith("--out="):
            return Path(arg.split("=", 1)[1])
    return Path("run")  # train.py's default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--register", action="append", default=[],
                        help="import this module first (it registers Gymnasium ids)")
    parser.add_argument("train_py")
    args, train_args = parser.parse_known_args()
    for module in args.register:
        importlib.import_module(module)
    out = _out_folder(train_args)
    from robo_agent.autoresearch import onnx_policy

    write_artifact = onnx_policy.write_artifact

    def write_and_keep(folder: Any, model: Any, fields: dict, *rest: Any, **kw: Any) -> Any:
        called = time.monotonic()
        written = write_artifact(folder, model, fields, *rest, **kw)
        if Path(folder) == out / "artifact":
            prov = fields.get("provenance", {})
            kept = out / "checkpoints" / f"{int(prov['env_steps']):09d}"
            shutil.copytree(folder, kept, dirs_exist_ok=True)
            record = {"artifact": str(kept), "env_steps": prov["env_steps"],
                      "updates": prov.get("updates"),
                      "train_seconds": prov["training_wall_seconds"],
                      "process_seconds": called - START,
                      "cpu_seconds": prov["training_seconds"]}  # fmt: skip
            with open(out / "checkpoints" / "index.jsonl", "a") as index:
                index.write(json.dumps(record) + "\n")
        return written

    # train.py imports write_artifact from this module when it runs below
    onnx_policy.write_artifact = write_and_keep
    sys.argv = [args.train_py, *train_args]
    runpy.run_path(args.train_py, run_name="__main__")


if __name__ == "__main__":
    main()
