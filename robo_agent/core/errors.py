"""Readable text for pydantic validation errors, shared by the file loaders in core."""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(err: ValidationError, top: str = "<top>") -> str:
    """`key.path: message; ...` for every error, so a message names the offending key."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or top}: {e['msg']}" for e in err.errors()
    )
