"""List-then-watch reflectors: keep an in-memory cache in step with the API server.

Shared by the extender's cluster cache and the predictor's admission webhook, so both follow the
API server the same way (paging, resourceVersion, bookmarks, 410 Gone, back-off). The kubernetes
client provides the calls (auth, TLS, paging, watch parameters); the event loop is ours because
its `Watch` helper either deserializes every event into slow swagger models or, in raw mode,
neither tracks resourceVersion nor handles ERROR events. Objects stay raw JSON (msgspec.Raw): each
cache decodes them with its own views.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import msgspec
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

GROUP, VERSION = "kinship.dev", "v1alpha1"
PAGE_SIZE = 500  # the API server's recommended chunk: bounded memory per response
WATCH_TIMEOUT_SECONDS = 290  # server ends the watch; we resume from the last resourceVersion
MAX_BACKOFF_SECONDS = 30.0


class _ListMeta(msgspec.Struct):
    resourceVersion: str = ""
    continue_: str | None = msgspec.field(default=None, name="continue")


class _ListEnvelope(msgspec.Struct):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
    items: list[msgspec.Raw] | None = None


class _Event(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _Status(msgspec.Struct):
    code: int = 0
    reason: str = ""
    message: str = ""


class _Meta(msgspec.Struct):
    name: str = ""
    namespace: str = "default"
    resourceVersion: str = ""


class _Object(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)


_env = msgspec.json.Decoder(_ListEnvelope)
_event = msgspec.json.Decoder(_Event)
_status = msgspec.json.Decoder(_Status)
_object = msgspec.json.Decoder(_Object)


def object_name(raw: msgspec.Raw) -> tuple[str, str]:
    """(namespace, name) of a raw object; the namespace of a cluster-scoped one is "default"."""
    meta = _object.decode(raw).metadata
    return meta.namespace, meta.name


class Expired(Exception):
    """410 Gone: our resourceVersion is older than etcd's compaction; relist."""


@dataclass(frozen=True)
class Resource:
    """How to list one kind and how to apply its objects to the cache."""

    name: str
    call: Callable[..., Any]  # a kubernetes client list function taking watch/limit/... kwargs
    replace: Callable[[list[msgspec.Raw]], None]
    apply: Callable[[str, msgspec.Raw], None]
    optional: bool = False  # a missing CRD means "none yet", not an error
    # Only a hint for scoring (GPU demand not placed yet): without RBAC for it (403), run without
    # it rather than stay unready and leave every pod to kube-scheduler alone.
    hint: bool = False


class SyncTracker(Protocol):
    """Where a reflector reports that its resource's first list is in the cache (readiness)."""

    def mark_synced(self, kind: str) -> None: ...


class Reflector(threading.Thread):
    """One resource's list, then watch from the listed resourceVersion, relisting when needed."""

    log: ClassVar[logging.Logger] = logging.getLogger("kinship.watch")

    def __init__(self, resource: Resource, state: SyncTracker) -> None:
        super().__init__(name=f"reflector-{resource.name}", daemon=True)
        self.resource = resource
        self.state = state
        self._stop_event = threading.Event()
        self._response: Any = None

    def stop(self) -> None:
        self._stop_event.set()
        response = self._response
        if response is not None:
            # close() alone waits for the reading thread (TLS), up to the watch's timeout;
            # shutting the socket's read side down interrupts the read at once.
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                response.shutdown()
            response.close()

    def run(self) -> None:
        backoff = 0.5
        while not self._stop_event.is_set():
            try:
                version = self._relist()
                self.state.mark_synced(self.resource.name)
                backoff = 0.5
                self._watch(version)
            except Expired:
                self.log.info("%s: resourceVersion expired (410 Gone), relisting", self.resource.name)
                continue
            except ApiException as exc:
                if (exc.status == 404 and self.resource.optional) or (
                    exc.status == 403 and self.resource.hint
                ):
                    why = "forbidden (RBAC)" if exc.status == 403 else "CRD not installed"
                    self.log.warning("%s: %s; treating as empty until it is not", self.resource.name, why)
                    self.resource.replace([])
                    self.state.mark_synced(self.resource.name)
                    backoff = MAX_BACKOFF_SECONDS
                else:
                    self.log.warning(
                        "%s: API error %s %s; retrying in %.1fs",
                        self.resource.name,
                        exc.status,
                        exc.reason,
                        backoff,
                    )
            except (HTTPError, OSError, msgspec.DecodeError) as exc:
                if self._stop_event.is_set():
                    return
                self.log.warning("%s: %s; retrying in %.1fs", self.resource.name, exc, backoff)
            except Exception:
                # stop() closes the response under the reading thread (urllib3 then fails in its
                # own ways); anything else is a bug, but a dead reflector would leave the cache
                # stale forever, so log it and keep going.
                if self._stop_event.is_set():
                    return
                self.log.exception("%s: unexpected error; retrying in %.1fs", self.resource.name, backoff)
            self._stop_event.wait(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _relist(self) -> str:
        items: list[msgspec.Raw] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            try:
                response = self.resource.call(**kwargs)
            except ApiException as exc:
                if exc.status == 410:  # continue token expired mid-list: start over
                    items, token = [], None
                    continue
                raise
            page = _env.decode(response.data)
            items.extend(page.items or ())
            token = page.metadata.continue_
            if not token:
                self.resource.replace(items)
                self.log.info(
                    "%s: listed %d at resourceVersion %s",
                    self.resource.name,
                    len(items),
                    page.metadata.resourceVersion,
                )
                return page.metadata.resourceVersion

    def _watch(self, version: str) -> None:
        while not self._stop_event.is_set():
            started = time.monotonic()
            version = self.watch_once(version, WATCH_TIMEOUT_SECONDS)
            if time.monotonic() - started < 1.0:  # ended at once (a proxy?): don't hammer
                self._stop_event.wait(1.0)

    def watch_once(self, version: str, timeout_seconds: int) -> str:
        """One watch request from `version` until the server ends it; returns the last version
        seen. Raises _Expired on 410 Gone."""
        response = self.resource.call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _preload_content=False,
            _request_timeout=(10, timeout_seconds + 30),
        )
        self._response = response
        try:
            for line in iter_resp_lines(response):
                if not line:
                    continue
                event = _event.decode(line)
                if event.type == "ERROR":
                    status = _status.decode(event.object)
                    if status.code == 410:
                        raise Expired
                    raise ApiException(status=status.code, reason=f"{status.reason}: {status.message}")
                version = _object.decode(event.object).metadata.resourceVersion or version
                if event.type != "BOOKMARK":
                    self.resource.apply(event.type, event.object)
        finally:
            self._response = None
            response.release_conn()
        return version
