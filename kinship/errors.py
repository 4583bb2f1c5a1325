"""Errors a user can act on: they name the file (or request) and the field, never a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InputError(Exception):
    """Bad user input. `problems` lists every problem found, so one run reports them all."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"{self.source}: {len(self.problems)} problems:\n{lines}"


def describe_validation_error(err: Mapping[str, Any]) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as `path: message (got value)`.

    The path reads like the YAML it points into (`spec.edges[0].weight`), so a user can find the
    field; the offending value is shown when it is a scalar (a whole dict or list would drown the
    message). Every contract model (AgentGraph, AgentProfile) reports through this one helper.
    """
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{path or '<document>'}: {err['msg']}{shown}"
