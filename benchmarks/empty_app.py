"""The baseline for the extender benchmark: the same server stack and body read, no work.

Run as `uvicorn benchmarks.empty_app:app --loop uvloop --http httptools`. The verb sits behind the
extender's own front door (`VerbRoutes`), as Kinship's do, so the two differ by Kinship's work only.
"""

from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from extender.app import VerbRoutes


async def prioritize(read: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:
    await read()
    return 200, b"[]"


app = VerbRoutes(FastAPI(), {"/prioritize": prioritize}, 64 * 1024 * 1024)
