"""The extender protocol with nothing behind it: every node passes, every node scores 0.

`bench_throughput` points a third kube-scheduler at it to measure what the extender protocol
itself costs kube-scheduler on this machine (two HTTP round trips per pod, JSON both ways, the
same Python server stack as Kinship), so the gap between the default scheduler and Kinship splits
into the protocol's share and Kinship's own. Run as
`uvicorn benchmarks.floor_app:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

import msgspec
import numpy as np
from fastapi import FastAPI, Request, Response

from extender.app import read_body
from extender.wire import PriorityTemplate

LIMIT = 64 * 1024 * 1024


class _Args(msgspec.Struct):
    NodeNames: list[str] | None = None


_decode = msgspec.json.Decoder(_Args).decode
_encode = msgspec.json.Encoder().encode
_templates: dict[tuple[str, ...], PriorityTemplate] = {}

app = FastAPI()


@app.post("/filter")
async def filter_(request: Request) -> Response:
    names = _decode(await read_body(request.scope, request.receive, LIMIT)).NodeNames or []
    body = {"NodeNames": names, "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": ""}
    return Response(_encode(body), media_type="application/json")


@app.post("/prioritize")
async def prioritize(request: Request) -> Response:
    names = tuple(_decode(await read_body(request.scope, request.receive, LIMIT)).NodeNames or [])
    template = _templates.get(names)
    if template is None:
        template = _templates[names] = PriorityTemplate(list(names))
    return Response(template.encode(np.zeros(len(names), dtype=np.int64)), media_type="application/json")
