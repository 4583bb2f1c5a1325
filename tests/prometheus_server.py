"""The real Prometheus (Debian's `prometheus`) on a free loopback port, with a throwaway TSDB.

Tests and the benchmark start their own process; a `prometheus` service that the Debian package
may have started is never used or touched (it would listen on :9090, we never do).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from tests.serving import free_port


def prometheus_binary() -> str:
    """`prometheus` from PATH, installing Debian's package first on a fresh machine (as CI is)."""
    found = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "prometheus"], check=True, env=env, timeout=900)
    found = shutil.which("prometheus")
    if not found:
        raise RuntimeError("apt-get installed prometheus, but it is not in PATH")
    return found


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def prometheus(targets: list[str], scrape_interval: str = "1s") -> Iterator[Prometheus]:
    """Prometheus scraping `targets` (host:port), ready to query; stopped and deleted on exit."""
    binary = prometheus_binary()
    with tempfile.TemporaryDirectory(prefix="kinship-prometheus-") as tmp:
        work = Path(tmp)
        config = work / "prometheus.yml"
        target_list = ", ".join(f'"{t}"' for t in targets)
        config.write_text(
            f"global: {{scrape_interval: {scrape_interval}, evaluation_interval: {scrape_interval}}}\n"
            f"scrape_configs:\n- job_name: replay\n  static_configs:\n  - targets: [{target_list}]\n"
        )
        port = free_port()
        log = work / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C to the test run must not skip our own shutdown
            )
        server = Prometheus(f"http://127.0.0.1:{port}", proc, log)
        try:
            _wait_ready(server, timeout_seconds=60)
            yield server
        finally:
            server.stop()


def _wait_ready(server: Prometheus, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with {server.proc.returncode}:\n{server.log.read_text()[-3000:]}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"prometheus not ready after {timeout_seconds}s:\n{server.log.read_text()[-3000:]}")


def wait_for_series(url: str, query: str, minimum: int, timeout_seconds: float) -> None:
    """Until an instant query returns at least `minimum` series (scrapes have landed)."""
    deadline = time.monotonic() + timeout_seconds
    count = 0
    while time.monotonic() < deadline:
        reply = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5.0).json()
        count = len(reply.get("data", {}).get("result", []))
        if count >= minimum:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{query}: {count} series after {timeout_seconds}s, wanted {minimum}")
