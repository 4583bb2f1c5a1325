"""The mutating admission webhook's process: AgentProfiles watched into memory, served over HTTPS.

Admission is on the path of every opted-in pod CREATE, with the API server waiting (timeoutSeconds
2-3, failurePolicy Ignore), so the webhook answers from memory: a list+watch of AgentProfiles
(kinship.watch, as the extender follows them), of LimitRanges (requests stay within them, see
predictor.limitrange) and of ResourceQuotas (requests they limit are only lowered, see
predictor.quota), and no API call per review. Profiles are kept as
published and judged by the policy at admission time, so one that ages past the limit while cached
stops right-sizing pods without waiting for an event.

Endpoints: POST /mutate (AdmissionReview in and out; 400 with a message for anything else),
/readyz (profiles, LimitRanges and ResourceQuotas listed), /livez.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from kinship import watch
from kinship.errors import InputError
from kinship.profile import AgentProfile, ProfilePolicy, parse_agent_profile
from predictor.admission import BadReview, decide
from predictor.limitrange import LimitItem, parse_limit_range
from predictor.quota import QuotaItem, parse_resource_quota
from predictor.tls import CertificateReloader

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("kinship.predictor.webhook")
RESOURCE = "agentprofiles"
Item = TypeVar("Item")


class _Listed:
    """Readiness of a cache fed by one reflector: its first list is in (kinship.watch.SyncTracker)."""

    _synced = False

    @property
    def ready(self) -> bool:
        return self._synced

    def mark_synced(self, kind: str) -> None:
        self._synced = True


class ProfileCache(_Listed):
    """AgentProfiles by (namespace, agent), fed by one reflector, read by the request handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[tuple[str, str], AgentProfile] = {}
        # watch events name objects, profiles are indexed by agent: keep the way back
        self._agent_of: dict[tuple[str, str], tuple[str, str]] = {}

    def get(self, namespace: str, agent: str) -> AgentProfile | None:
        return self._profiles.get((namespace, agent))

    def __len__(self) -> int:
        return len(self._profiles)

    def upsert(self, profile: AgentProfile) -> None:
        with self._lock:
            self._forget((profile.metadata.namespace, profile.metadata.name))
            self._profiles[profile.key] = profile
            self._agent_of[(profile.metadata.namespace, profile.metadata.name)] = profile.key

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            self._forget((namespace, name))

    def replace(self, profiles: list[AgentProfile]) -> None:
        with self._lock:
            self._profiles = {p.key: p for p in profiles}
            self._agent_of = {(p.metadata.namespace, p.metadata.name): p.key for p in profiles}

    def _forget(self, name: tuple[str, str]) -> None:
        key = self._agent_of.pop(name, None)
        if key is not None:
            self._profiles.pop(key, None)


class NamespaceItems(_Listed, Generic[Item]):
    """The items (bounds on requests) of every object of one kind, by namespace, fed by one
    reflector. Writers rebuild a namespace's tuple under the lock, from that namespace's objects
    only (a quota's status changes with every pod created or deleted under it); readers (request
    handlers) do one dict lookup, lock-free. Within a namespace, objects come in name order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_object: dict[str, dict[str, list[Item]]] = {}  # namespace -> name -> items
        self._by_namespace: dict[str, tuple[Item, ...]] = {}

    def items(self, namespace: str) -> tuple[Item, ...]:
        return self._by_namespace.get(namespace, ())

    def upsert(self, namespace: str, name: str, items: list[Item]) -> None:
        with self._lock:
            self._by_object.setdefault(namespace, {})[name] = items
            self._rebuild(namespace)

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            self._by_object.get(namespace, {}).pop(name, None)
            self._rebuild(namespace)

    def replace(self, objects: dict[tuple[str, str], list[Item]]) -> None:
        by_object: dict[str, dict[str, list[Item]]] = {}
        for (namespace, name), items in objects.items():
            by_object.setdefault(namespace, {})[name] = items
        by_namespace = {ns: _flatten(named) for ns, named in by_object.items()}
        with self._lock:
            self._by_object = by_object
            self._by_namespace = {ns: items for ns, items in by_namespace.items() if items}

    def _rebuild(self, namespace: str) -> None:
        items = _flatten(self._by_object.get(namespace, {}))
        if items:
            self._by_namespace[namespace] = items
        else:
            self._by_object.pop(namespace, None)
            self._by_namespace.pop(namespace, None)


def _flatten(named: dict[str, list[Item]]) -> tuple[Item, ...]:
    """One namespace's items, its objects in name order."""
    return tuple(item for name in sorted(named) for item in named[name])


class LimitRangeCache(NamespaceItems[LimitItem]):
    """The cpu/memory items of every namespace's LimitRanges."""


class QuotaCache(NamespaceItems[QuotaItem]):
    """What every namespace's ResourceQuotas constrain: cpu/memory requests, NotBestEffort pods."""


def _items_resource(
    cache: NamespaceItems[Item],
    plural: str,
    list_all: Callable[..., Any],
    parse_object: Callable[[Any], list[Item]],
) -> watch.Resource:
    """A reflector's resource that keeps `cache` in step. An object whose quantities do not parse
    keeps no items (the API server validates them, so this is a client that reads them
    differently)."""

    def parse(raw: msgspec.Raw) -> list[Item]:
        try:
            return parse_object(msgspec.json.decode(raw))
        except InputError as exc:
            log.warning("ignoring invalid %s", exc.render())
            return []

    def apply(kind: str, raw: msgspec.Raw) -> None:
        if kind == "DELETED":
            cache.delete(*watch.object_name(raw))
        else:
            cache.upsert(*watch.object_name(raw), parse(raw))

    def relist(raws: list[msgspec.Raw]) -> None:
        cache.replace({watch.object_name(raw): parse(raw) for raw in raws})

    return watch.Resource(plural, list_all, relist, apply)


def limit_ranges_resource(cache: LimitRangeCache, api: Any) -> watch.Resource:
    """The LimitRanges reflector's resource."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    return _items_resource(cache, "limitranges", core.list_limit_range_for_all_namespaces, parse_limit_range)


def resource_quotas_resource(cache: QuotaCache, api: Any) -> watch.Resource:
    """The ResourceQuotas reflector's resource."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    return _items_resource(
        cache, "resourcequotas", core.list_resource_quota_for_all_namespaces, parse_resource_quota
    )


def profiles_resource(cache: ProfileCache, api: Any) -> watch.Resource:
    """The AgentProfiles reflector's resource: a missing CRD is "no profiles yet", not an error."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)

    def list_profiles(**kwargs: Any) -> Any:
        return custom.list_cluster_custom_object(watch.GROUP, watch.VERSION, RESOURCE, **kwargs)

    def parse(raw: msgspec.Raw) -> AgentProfile | None:
        namespace, name = watch.object_name(raw)
        try:
            return parse_agent_profile(msgspec.json.decode(raw), f"AgentProfile {namespace}/{name}")
        except InputError as exc:  # one bad object is skipped; the watch keeps following
            log.warning("ignoring invalid %s", exc.render())
            return None

    def apply(kind: str, raw: msgspec.Raw) -> None:
        if kind == "DELETED":
            cache.delete(*watch.object_name(raw))
        elif (profile := parse(raw)) is not None:
            cache.upsert(profile)
        else:  # an update that made it invalid: it no longer right-sizes anything
            cache.delete(*watch.object_name(raw))

    def relist(raws: list[msgspec.Raw]) -> None:
        cache.replace([p for p in map(parse, raws) if p is not None])

    return watch.Resource(RESOURCE, list_profiles, relist, apply, optional=True)


def create_app(
    cache: ProfileCache, limit_ranges: LimitRangeCache, quotas: QuotaCache, policy: ProfilePolicy
) -> FastAPI:
    app = FastAPI(title="kinship admission webhook", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/mutate")
    async def mutate(request: Request) -> Response:
        body = await request.body()
        try:
            decision = decide(body, cache.get, policy, time.time(), limit_ranges.items, quotas.items)
        except BadReview as exc:
            return PlainTextResponse(f"bad AdmissionReview: {exc}\n", status_code=400)
        if decision.mutation.patch:
            log.info("%s: %s", decision.subject, decision.mutation.reason)
        else:
            log.debug("%s: unchanged: %s", decision.subject, decision.mutation.reason)
        return JSONResponse(decision.response)

    @app.get("/livez")
    async def livez() -> PlainTextResponse:
        return PlainTextResponse("ok\n")

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        listed: tuple[tuple[str, _Listed], ...] = (
            ("AgentProfiles", cache),
            ("LimitRanges", limit_ranges),
            ("ResourceQuotas", quotas),
        )
        waiting = [kind for kind, c in listed if not c.ready]
        if not waiting:
            return PlainTextResponse(f"ok: {len(cache)} AgentProfiles\n")
        return PlainTextResponse(f"{' and '.join(waiting)} not listed yet\n", status_code=503)

    return app


def server_config(app: FastAPI, host: str, port: int, reloader: CertificateReloader) -> uvicorn.Config:
    """The uvicorn.Config the webhook serves with: HTTPS from the reloader's key pair, which it
    swaps in when the files are renewed; no access log (one line per pod admitted)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(reloader.cert_file),
        ssl_keyfile=str(reloader.key_file),
        ssl_context_factory=reloader.ssl_context_factory,
        access_log=False,
        log_config=None,
    )
