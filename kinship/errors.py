"""Errors a user can act on: they name the file (or request) and the field, never a traceback."""

from __future__ import annotations


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
