"""The baseline for the extender benchmark: the same server stack and body read, no work.

Run as `uvicorn benchmarks.empty_app:app --loop uvloop --http httptools`.
"""

from fastapi import FastAPI, Request, Response

from extender.app import read_body

app = FastAPI()


@app.post("/prioritize")
async def prioritize(request: Request) -> Response:
    await read_body(request.scope, request.receive, 64 * 1024 * 1024)
    return Response(b"[]", media_type="application/json")
