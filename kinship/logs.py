"""Logging set-up: readable text on a terminal, one JSON object per line in the cluster."""

from __future__ import annotations

import logging
import sys
from typing import Literal

LogFormat = Literal["auto", "text", "json"]


def configure(level: str, fmt: LogFormat) -> None:
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler: logging.Handler
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def configure_cli(level: str, fmt: str) -> None:
    """`configure` for a command's --log-level/--log-format, with a bad format a usage error."""
    import typer

    if fmt not in ("auto", "text", "json"):
        raise typer.BadParameter("must be auto, text or json", param_hint="--log-format")
    configure(level, fmt)  # type: ignore[arg-type]
