"""The webhook's serving certificate, reloaded when cert-manager renews it, without a restart.

cert-manager rewrites the Secret and the kubelet swaps the mounted files (a new `..2026_...`
directory, then a rename of the `..data` symlink). A process that reads the pair once serves the
old certificate until it expires; then every review fails TLS and, with failurePolicy Ignore, pods
are admitted unsized without an error anywhere.

So a thread compares the files' contents every few seconds. Contents, not mtime or inode: a swap
through `..data` keeps the paths, inotify on the paths watches the replaced targets, and the
kubelet does not promise new mtimes (kubernetes/kubernetes#24215); two small files read every few
seconds cost nothing.

A new pair is loaded into a new SSLContext, never into the one being served: a failed
`load_cert_chain` (a half-copied pair whose key does not match) leaves that context with no
usable key, and every handshake fails. The served context's SNI callback, which OpenSSL calls for
every ClientHello with or without a server name, moves each new connection to the newest good
context; open connections keep theirs.
"""

from __future__ import annotations

import _ssl
import contextlib
import hashlib
import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("kinship.predictor.tls")

# The kubelet takes up to a minute or so to sync a renewed Secret into the pod (cert-manager
# renews 30 days ahead); 5 s more is nothing next to that, and reading two small files every
# 5 s costs nothing.
POLL_INTERVAL_SECONDS = 5.0


class CertificateReloader(threading.Thread):
    """Serves the newest key pair that loads; a pair that does not is logged and retried."""

    def __init__(
        self, cert_file: Path, key_file: Path, poll_interval_seconds: float = POLL_INTERVAL_SECONDS
    ) -> None:
        super().__init__(name="tls-reloader", daemon=True)
        self.cert_file = cert_file
        self.key_file = key_file
        self.poll_interval_seconds = poll_interval_seconds
        self._stop_event = threading.Event()
        self._build: Callable[[], ssl.SSLContext] | None = None
        self._current: ssl.SSLContext | None = None
        self._loaded: bytes = b""  # fingerprint of the files the current context was built from
        self._problem = ""  # the last failure, so that a pair left broken warns once, not per poll

    def ssl_context_factory(self, config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        """uvicorn's `Config(ssl_context_factory=...)`: reloads build with uvicorn's own recipe
        (protocol, ciphers, ALPN), so a renewed context differs from the first only in its pair."""
        self._build = default
        self._loaded = self._fingerprint()  # before the build: a change during it is seen later
        served = default()
        served.sni_callback = self._select
        self._current = served
        self._log_loaded()
        return served

    def poll(self) -> bool:
        """One look at the files; True when a new pair is now served."""
        if self._build is None:  # uvicorn has not built its context yet
            return False
        try:
            fingerprint = self._fingerprint()
            if fingerprint == self._loaded:
                return False
            context = self._build()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            problem = f"cannot load the key pair {self.cert_file}, {self.key_file}: {exc}"
            level = logging.DEBUG if problem == self._problem else logging.WARNING
            log.log(level, "%s; still serving the previous certificate, retrying", problem)
            self._problem = problem
            return False
        self._current, self._loaded, self._problem = context, fingerprint, ""
        self._log_loaded()
        return True

    def run(self) -> None:
        while not self._stop_event.wait(self.poll_interval_seconds):
            self.poll()

    def stop(self) -> None:
        self._stop_event.set()

    def _select(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, served: ssl.SSLContext
    ) -> None:
        """Runs in the event loop for every handshake: one comparison, and a switch after a reload."""
        current = self._current
        if current is not None and current is not served:
            connection.context = current

    def _fingerprint(self) -> bytes:
        return hashlib.sha256(self.cert_file.read_bytes() + b"\0" + self.key_file.read_bytes()).digest()

    def _log_loaded(self) -> None:
        """notAfter from the file: the context does not expose its own certificate. The file may
        have changed since the load, in which case the next poll loads and logs again."""
        not_after = "unknown"
        with contextlib.suppress(Exception):  # a private CPython helper; a log line must not fail
            not_after = _ssl._test_decode_cert(str(self.cert_file))["notAfter"]  # type: ignore[attr-defined]
        log.info("serving the certificate in %s (notAfter %s)", self.cert_file, not_after)
