"""The extender protocol with nothing behind it: every node passes, every node scores 0.

`bench_throughput` points a third kube-scheduler at it to measure what the extender protocol
itself costs kube-scheduler on this machine (two HTTP round trips per pod, JSON both ways, the
same Python server stack and front door as Kinship), so the gap between the default scheduler and
Kinship splits into the protocol's share and Kinship's own. Run as
`uvicorn benchmarks.floor_app:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
import numpy as np
from fastapi import FastAPI

from extender.app import VerbRoutes
from extender.wire import PriorityTemplate

LIMIT = 64 * 1024 * 1024
Read = Callable[[], Awaitable[bytes]]


class _Args(msgspec.Struct):
    NodeNames: list[str] | None = None


_decode = msgspec.json.Decoder(_Args).decode
_encode = msgspec.json.Encoder().encode
_templates: dict[tuple[str, ...], PriorityTemplate] = {}


async def filter_(read: Read) -> tuple[int, bytes]:
    names = _decode(await read()).NodeNames or []
    result = {"NodeNames": names, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": ""}
    return 200, _encode(result)


async def prioritize(read: Read) -> tuple[int, bytes]:
    names = tuple(_decode(await read()).NodeNames or [])
    template = _templates.get(names)
    if template is None:
        template = _templates[names] = PriorityTemplate(list(names))
    return 200, template.encode(np.zeros(len(names), dtype=np.int64))


app = VerbRoutes(FastAPI(), {"/filter": filter_, "/prioritize": prioritize}, LIMIT)
