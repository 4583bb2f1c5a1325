"""HTTP surface of the extender: the two verbs, health endpoints and /metrics.

Hot routes read the raw body and return bytes; FastAPI's model layer is kept off the request path
because validating full Node objects with it would cost more than the scoring itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from extender import placement, wire
from extender.config import ExtenderConfig
from extender.explain import breakdown_lines
from extender.metrics import ExtenderMetrics
from extender.state import ClusterState, UnknownNodes

log = logging.getLogger("kinship.extender")
JSON = "application/json"


class _TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(state: ClusterState, config: ExtenderConfig) -> FastAPI:
    app = FastAPI(title="Kinship extender", docs_url=None, redoc_url=None)
    metrics = ExtenderMetrics(state)
    app.state.metrics = metrics
    limit = config.max_request_bytes
    resolver = placement.NameResolver()

    def verb(name: str, handle: Callable[[wire.ExtenderArgs], bytes]) -> Callable[[Request], Awaitable[Response]]:
        latency = metrics.latency.labels(name)

        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            try:
                body = await read_body(request, limit)
                with state.lock:
                    content = handle(wire.decode_args(body))
                code = 200
            except _TooLarge:
                code, content = 413, wire.encode_error_result(f"request body over {limit} bytes")
            except (wire.WireError, UnknownNodes) as exc:
                code, content = 400, wire.encode_error_result(str(exc))
            except Exception:  # a bug must not take the scheduler's extender down with it
                log.exception("%s failed", name)
                code, content = 500, wire.encode_error_result(f"internal error in {name}")
            metrics.requests.labels(name, str(code)).inc()
            latency.observe(time.perf_counter() - start)
            return Response(content, status_code=code, media_type=JSON)

        return endpoint

    def do_filter(args: wire.ExtenderArgs) -> bytes:
        ctx = placement.PodContext.of(args.pod, state)
        cand = placement.candidates(state, args, resolver)
        out = placement.run_filter(state, ctx, cand)
        if out.failed:
            metrics.filtered_out.labels("gpu").inc(len(out.failed))
        if out.unresolvable:
            metrics.filtered_out.labels("colocation").inc(len(out.unresolvable))
        passed = np.flatnonzero(out.passed).tolist()
        return wire.encode_filter(args, cand.names, passed, out.failed, out.unresolvable)

    def do_prioritize(args: wire.ExtenderArgs) -> bytes:
        ctx = placement.PodContext.of(args.pod, state)
        cand = placement.candidates(state, args, resolver)
        prio = placement.run_prioritize(state, ctx, cand, config)
        metrics.placements.inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("\n".join(breakdown_lines(ctx, cand, prio)))
        return wire.encode_priorities(cand.names, prio.scores, cand.names_safe)

    app.add_api_route("/filter", verb("filter", do_filter), methods=["POST"])
    app.add_api_route("/prioritize", verb("prioritize", do_prioritize), methods=["POST"])

    def alive() -> Response:
        return Response("ok", media_type="text/plain")

    def ready() -> Response:
        if state.ready:
            return Response("ok", media_type="text/plain")
        waiting = ", ".join(state.unsynced()) or "no sources configured"
        return Response(f"caches not synced: {waiting}", status_code=503, media_type="text/plain")

    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/livez", alive, methods=["GET"])
    app.add_api_route("/healthz", ready, methods=["GET"])
    app.add_api_route("/readyz", ready, methods=["GET"])
    app.add_api_route("/metrics", prometheus, methods=["GET"])
    return app
