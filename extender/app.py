"""HTTP surface of the extender: the three verbs, health endpoints and /metrics.

The verbs (filter, prioritize, bind) are answered by a plain ASGI front door in front of the
FastAPI app, from the raw body to bytes. Measured with benchmarks/bench_throughput.py, FastAPI's
route, middleware and response layers took more of the extender's time per pod than the scoring
itself, and kube-scheduler waits for every call; the health, readiness and metrics endpoints stay
on FastAPI, which also receives every other method and path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from extender import placement, wire
from extender.binder import Binder, BindError
from extender.config import ExtenderConfig
from extender.metrics import ExtenderMetrics
from extender.objects import Pod
from extender.state import ClusterState, InFlight, UnknownNodes

log = logging.getLogger("kinship.extender")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# A verb reads its body through the given coroutine (which raises BodyTooLarge) and answers with
# an HTTP status and a JSON body.
Verb = Callable[[Callable[[], Awaitable[bytes]]], Awaitable[tuple[int, bytes]]]
_JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    pass


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused (BodyTooLarge) as soon as it is known to exceed `limit`."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class VerbRoutes:
    """ASGI front door: POST to a verb's path is answered here, everything else goes to `app`."""

    def __init__(self, app: ASGIApp, verbs: dict[str, Verb], limit: int) -> None:
        self.app = app
        self.verbs = verbs
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        verb = self.verbs.get(scope.get("path", "")) if scope["type"] == "http" else None
        if verb is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        code, content = await verb(lambda: read_body(scope, receive, self.limit))
        headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": content})


class Extender:
    """The two verbs over one cache. Each call holds the cache lock so that one decision sees
    one version of the cluster."""

    def __init__(
        self, state: ClusterState, config: ExtenderConfig, metrics: ExtenderMetrics, binder: Binder | None
    ) -> None:
        self.state = state
        self.config = config
        self.metrics = metrics
        self.binder = binder
        self.resolver = placement.NameResolver()

    def filter(self, args: wire.ExtenderArgs) -> bytes:
        ctx = placement.PodContext.of(args.pod, self.state)
        cand = placement.candidates(self.state, args, self.resolver)
        out = placement.run_filter(self.state, ctx, cand)
        placement.keep_best(self.state, ctx, cand, out, self.config)
        for reason, count in out.removed.items():
            self.metrics.filtered_out.labels(reason).inc(count)
        passed = np.flatnonzero(out.passed).tolist()
        if passed:  # a pod no node passes is not placed: its peers must not wait for it
            self._note_in_flight(args.pod, ctx)
        return wire.encode_filter(args, cand.names, passed, out.failed, out.unresolvable)

    def prioritize(self, args: wire.ExtenderArgs) -> bytes:
        ctx = placement.PodContext.of(args.pod, self.state)
        self._note_in_flight(args.pod, ctx)
        cand = placement.candidates(self.state, args, self.resolver)
        prio = placement.run_prioritize(self.state, ctx, cand, self.config)
        self.metrics.placements.inc()
        if log.isEnabledFor(logging.DEBUG):
            from extender.explain import breakdown_lines  # rich costs start-up time; debug only

            log.debug("\n".join(breakdown_lines(ctx, cand, prio, self.state)))
        return wire.encode_priorities(cand.names, prio.scores, cand.template)

    def _note_in_flight(self, pod: Pod, ctx: placement.PodContext) -> None:
        # Only a cluster-mode extender learns of bindings (and only waiting prunes the entries):
        # offline, skip it. Pods without an agent are noted too: a bind call places them at once.
        if self.state.watched:
            now = time.monotonic()
            deadline = now + self.config.in_flight_ttl_seconds
            self.state.note_in_flight(
                pod.key,
                InFlight(
                    ctx.namespace,
                    ctx.name,
                    ctx.agent,
                    ctx.gpus,
                    ctx.cpu_request_millicores,
                    ctx.memory_request_bytes,
                    deadline,
                ),
                now,
            )

    async def bind(self, read: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:
        """Bind verb: place the pod in the cache at once, then write the binding.

        The pod is assumed on its node before the API call, so that a peer kube-scheduler scores
        meanwhile already sees it there; a failed write takes it off again and reports the error,
        which kube-scheduler (with `ignorable: true`) answers by binding with its own binder.
        """
        start = time.perf_counter()
        try:
            args = wire.decode_binding_args(await read())
        except BodyTooLarge:
            return self._bind_reply(start, 413, wire.encode_error_result("request body too large"))
        except wire.WireError as exc:
            return self._bind_reply(start, 400, wire.encode_error_result(str(exc)))
        if self.binder is None:
            message = "this extender runs offline (--snapshot) and cannot bind; remove bindVerb"
            return self._bind_reply(start, 501, wire.encode_binding_result(message))
        now = time.monotonic()
        with self.state.lock:
            assumed = self.state.assume(args.key, args.node, now, self.config.assumed_ttl_seconds)
        try:
            await self.binder.bind(args.namespace, args.name, args.uid, args.node)
        except Exception as exc:  # credentials refresh (exec plugin, token file) fails its own ways
            if assumed:
                self.state.forget_assumed(args.key)
            self.metrics.bind_failures.inc()
            message = (
                str(exc) if isinstance(exc, BindError) else f"binding {args.namespace}/{args.name}: {exc!r}"
            )
            log.warning("%s", message)
            return self._bind_reply(start, 200, wire.encode_binding_result(message))
        return self._bind_reply(start, 200, wire.encode_binding_result())

    def _bind_reply(self, start: float, code: int, content: bytes) -> tuple[int, bytes]:
        self.metrics.requests.labels("bind", str(code)).inc()
        self.metrics.latency.labels("bind").observe(time.perf_counter() - start)
        return code, content

    async def wait_for_peers(self, pod: Pod) -> None:
        """Let the bindings of just-scored peers (and replicas) arrive before scoring this pod.

        Runs without the cache lock, so the watch threads can apply those bindings meanwhile.
        """
        agent = pod.agent
        limit = self.config.peer_bind_wait_seconds
        if agent is None or limit <= 0 or not self.state.watched:
            return
        with self.state.lock:
            agents = placement.scoring_agents(self.state, pod.namespace, agent)
        start = time.monotonic()
        waited = False
        while self.state.in_flight(pod.namespace, agents, pod.key, time.monotonic()):
            if time.monotonic() - start >= limit:
                self.metrics.peer_wait_timeouts.inc()
                break
            waited = True
            await asyncio.sleep(0.002)
        if waited:
            self.metrics.peer_wait.inc(time.monotonic() - start)

    def verb(self, verb: str, handle: Callable[[wire.ExtenderArgs], bytes]) -> Verb:
        latency = self.metrics.latency.labels(verb)
        limit = self.config.max_request_bytes

        async def answer(read: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:
            start = time.perf_counter()
            try:
                args = wire.decode_args(await read())
                await self.wait_for_peers(args.pod)
                with self.state.lock:
                    content = handle(args)
                code = 200
            except BodyTooLarge:
                code, content = 413, wire.encode_error_result(f"request body over {limit} bytes")
            except (wire.WireError, UnknownNodes) as exc:
                code, content = 400, wire.encode_error_result(str(exc))
            except Exception:  # a bug must not take the scheduler's extender down with it
                log.exception("%s failed", verb)
                code, content = 500, wire.encode_error_result(f"internal error in {verb}")
            self.metrics.requests.labels(verb, str(code)).inc()
            latency.observe(time.perf_counter() - start)
            return code, content

        return answer


def create_app(state: ClusterState, config: ExtenderConfig, binder: Binder | None = None) -> VerbRoutes:
    """The extender on one listener: the verbs, the probes and /metrics (offline mode, tests,
    ./local-cluster.sh); `binder` (cluster mode) enables the bind verb."""
    verbs, _ = _apps(state, config, binder, combined=True)
    return verbs


def create_apps(
    state: ClusterState, config: ExtenderConfig, binder: Binder | None = None
) -> tuple[VerbRoutes, FastAPI]:
    """The verbs and the operations endpoints as two apps, for two listeners (extender/serving.py).

    The verbs app answers nothing but the verbs (404 for any other path), so the listener kept
    on loopback for kube-scheduler exposes no probe or metric; the ops app answers nothing but
    /livez, /readyz, /healthz and /metrics, so the port the kubelet and Prometheus reach cannot
    be used to call filter or bind. Both share one ExtenderMetrics: the verbs count what
    /metrics reports.
    """
    return _apps(state, config, binder, combined=False)


def _apps(
    state: ClusterState, config: ExtenderConfig, binder: Binder | None, combined: bool
) -> tuple[VerbRoutes, FastAPI]:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if binder is not None:
            await binder.close()

    metrics = ExtenderMetrics(state)
    extender = Extender(state, config, metrics, binder)
    verbs = {
        "/filter": extender.verb("filter", extender.filter),
        "/prioritize": extender.verb("prioritize", extender.prioritize),
        "/bind": extender.bind,
    }

    def alive() -> Response:
        return Response("ok", media_type="text/plain")

    def ready() -> Response:
        if state.ready:
            return Response("ok", media_type="text/plain")
        waiting = ", ".join(state.unsynced()) or "no sources configured"
        return Response(f"caches not synced: {waiting}", status_code=503, media_type="text/plain")

    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    ops = APIRouter()
    ops.add_api_route("/livez", alive, methods=["GET"])
    ops.add_api_route("/readyz", ready, methods=["GET"])
    ops.add_api_route("/healthz", ready, methods=["GET"])  # alias of /readyz, as kube components do
    ops.add_api_route("/metrics", prometheus, methods=["GET"])
    # The binder's connections close with the app whose verbs use them (its listener's lifespan).
    quiet: dict[str, Any] = {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="Kinship extender", lifespan=lifespan, **quiet)
    ops_app = FastAPI(title="Kinship extender operations", **quiet)
    (app if combined else ops_app).include_router(ops)
    return VerbRoutes(app, verbs, config.max_request_bytes), ops_app
