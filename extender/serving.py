"""The listeners `kinship serve` runs: the verbs, and optionally the operations endpoints apart.

Whoever reaches the verbs can bind any pending pod to any node with the extender's
`pods/binding` right, so the verbs must be reachable by kube-scheduler alone. Two ways are
supported (README.md, "Choosing the transport"):

- beside kube-scheduler in its pod: the verbs on 127.0.0.1, which nothing outside the pod's
  network namespace reaches. The kubelet's probes and Prometheus then need another address, so
  /livez, /readyz and /metrics get their own listener (`ops`), and each listener answers only
  its own paths: the probe port is no way in to the verbs.
- apart from it: HTTPS that requires a client certificate signed by the configured CA, so a
  caller without one is refused during the handshake and never reaches a route.

Both listeners run on one event loop in one process: they share the cache, its lock and the
metrics, and a second process would need a cache of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from extender.app import create_app, create_apps
from extender.binder import Binder
from extender.config import ExtenderConfig
from extender.state import ClusterState
from kinship.errors import InputError

log = logging.getLogger("kinship.extender.serving")
# uvicorn's `Config(ssl_context_factory=...)`: how a caller swaps certificates in on renewal.
SSLContextFactory = Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext]


@dataclass(frozen=True)
class ClientCertTLS:
    """HTTPS for the verbs, answering only clients whose certificate `client_ca_file` signed."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path
    # Called by uvicorn to build the context (e.g. a reloader that follows renewed files).
    context_factory: SSLContextFactory | None = None


@dataclass(frozen=True)
class Listener:
    host: str
    port: int


def check_tls(
    cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None
) -> ClientCertTLS | None:
    """The TLS settings of the verbs from `kinship serve`'s three flags, or None without any.

    All three or none: a server certificate without a client CA would encrypt the verbs and
    still answer anyone. The files are loaded here so that a bad one is a usage error naming
    the flag, not a traceback from uvicorn.
    """
    flags = {"--tls-cert-file": cert_file, "--tls-key-file": key_file, "--client-ca-file": client_ca_file}
    given = {flag: path for flag, path in flags.items() if path is not None}
    if not given:
        return None
    problems = [f"{flag} is required with {', '.join(given)}" for flag in flags if flag not in given]
    problems += [f"{flag}: no such file: {path}" for flag, path in given.items() if not path.is_file()]
    if not problems:
        assert cert_file is not None and key_file is not None and client_ca_file is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"--tls-cert-file: cannot load the key pair {cert_file}, {key_file}: {exc}")
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"--client-ca-file: cannot load CA certificates from {client_ca_file}: {exc}")
    if problems:
        raise InputError("options", problems)
    assert cert_file is not None and key_file is not None and client_ca_file is not None
    return ClientCertTLS(cert_file, key_file, client_ca_file)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    return False


def servers(
    state: ClusterState,
    config: ExtenderConfig,
    binder: Binder | None,
    verbs: Listener,
    ops: Listener | None = None,
    tls: ClientCertTLS | None = None,
) -> list[uvicorn.Server]:
    """The uvicorn servers to run together (`run`): the verbs first, then the ops listener.

    Without `ops` one listener answers everything, as before there were two (tests,
    ./local-cluster.sh). The ops listener is plain HTTP even when the verbs use TLS: the
    kubelet's probes present no client certificate, and it serves nothing that changes state.
    """
    if ops is not None and (ops.host, ops.port) == (verbs.host, verbs.port):
        raise InputError("--ops-port", [f"the ops listener needs an address of its own, not {ops.port}"])
    if tls is None and not _is_loopback(verbs.host):
        log.warning(
            "the verbs listen on %s without TLS: anyone who reaches that address can bind pods; "
            "keep them on 127.0.0.1 beside kube-scheduler or set --tls-cert-file, --tls-key-file "
            "and --client-ca-file",
            verbs.host,
        )
    if ops is None:
        apps: list[tuple[Any, Listener]] = [(create_app(state, config, binder), verbs)]
    else:
        verbs_app, ops_app = create_apps(state, config, binder)
        apps = [(verbs_app, verbs), (ops_app, ops)]
    built: list[uvicorn.Server] = []
    for i, (app, listener) in enumerate(apps):
        settings: dict[str, Any] = {}
        if tls is not None and i == 0:
            settings = {
                "ssl_certfile": str(tls.cert_file),
                "ssl_keyfile": str(tls.key_file),
                "ssl_ca_certs": str(tls.client_ca_file),
                "ssl_cert_reqs": ssl.CERT_REQUIRED,
                "ssl_context_factory": tls.context_factory,
            }
        built.append(
            _Server(
                uvicorn.Config(
                    app,
                    host=listener.host,
                    port=listener.port,
                    access_log=False,
                    log_config=None,
                    loop="uvloop",
                    http="httptools",
                    **settings,
                )
            )
        )
    return built


class _Server(uvicorn.Server):
    """A uvicorn server that leaves SIGTERM and SIGINT to `run`: each Server installs its own
    handlers, so of two the last one would be the only one to hear the kubelet's SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(listening: list[uvicorn.Server]) -> None:
    """Serve until SIGTERM or SIGINT, or until any one server stops (a failed bind, say): the
    others are then stopped too, so the pod's restart policy sees the whole process go."""
    with asyncio.Runner(loop_factory=listening[0].config.get_loop_factory()) as runner:
        runner.run(_serve_all(listening))


async def _serve_all(listening: list[uvicorn.Server]) -> None:
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        for server in listening:
            # a second Ctrl+C skips the drain, as uvicorn's own handler does
            server.force_exit = server.should_exit and sig == signal.SIGINT
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    tasks = [asyncio.create_task(server.serve()) for server in listening]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in listening:
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
