"""Writing a pod's binding to the API server for kube-scheduler (the extender's bind verb).

Binding through the extender is how it learns each decision the moment it is made: kube-scheduler
scores the next pod while the previous pod's binding is still being written, and only the bind call
tells the extender where that pod went. The write itself is what kube-scheduler's DefaultBinder
does: a `pods/binding` subresource create, with the pod's UID so that a pod deleted and recreated
under the same name is not bound by mistake.

The write runs on the event loop (aiohttp), not in threads with the blocking kubernetes client:
under load, threads contending for the GIL with the loop made each binding wait ~300 ms and slowed
filter and prioritize with them. Connection settings (server, TLS, credentials, refresh of
exec-plugin and in-cluster tokens) still come from the kubernetes client's Configuration, so the
binder reaches the API server exactly as the watches do.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes.client.rest import is_socks_proxy_url, should_bypass_proxies

# Below kube-scheduler's extender httpTimeout (5 s in the shipped config): answering with an error
# leaves it time to fall back to its own binder (`ignorable: true`) instead of timing out.
BIND_TIMEOUT_SECONDS = 4.0


class BindError(Exception):
    """The API server refused or could not be reached; the message says which and why."""


def ssl_context(configuration: Any) -> ssl.SSLContext:
    """TLS as the kubernetes client would set it up: CA bundle, client certificate, verification."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


class Binder:
    def __init__(self, configuration: Any, connections: int) -> None:
        """`configuration`: a loaded kubernetes.client.Configuration; `connections`: how many
        bindings may be in flight at once (kube-scheduler binds in parallel goroutines)."""
        self._configuration = configuration
        self._host = configuration.host.rstrip("/")
        self._ssl = ssl_context(configuration) if self._host.startswith("https") else None
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        # The proxy as the kubernetes client's RESTClientObject chooses it: none when no_proxy
        # matches the API server, so bindings go where the watches go.
        self._proxy = configuration.proxy
        if self._proxy and should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
            self._proxy = None
        if self._proxy and is_socks_proxy_url(self._proxy):
            raise ValueError(f"bindings cannot go through a SOCKS proxy ({self._proxy}); remove bindVerb")

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the event loop that serves the requests.
        connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl or False)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=BIND_TIMEOUT_SECONDS)
        )
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        # auth_settings() runs the Configuration's refresh hook (exec plugins, rotated in-cluster
        # service account tokens), so a long-running extender keeps valid credentials.
        for setting in self._configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    async def bind(self, namespace: str, name: str, uid: str, node: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, **({"uid": uid} if uid else {})},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}/binding"
        session = self._session or self._open()
        what = f"binding {namespace}/{name} to {node}"
        try:
            async with session.post(
                self._host + path,
                data=json.dumps(body),
                headers=self._headers(),
                proxy=self._proxy or None,
                proxy_headers=self._configuration.proxy_headers if self._proxy else None,
                server_hostname=self._configuration.tls_server_name or None,
            ) as response:
                if response.status >= 300:
                    reason = _reason(await response.read(), response.reason)
                    raise BindError(f"{what}: {response.status} {reason}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise BindError(f"{what}: {type(exc).__name__} {exc}".rstrip()) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _reason(body: bytes, fallback: str | None) -> str:
    """The API server's own message from its Status body, else the HTTP reason."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return fallback or ""
