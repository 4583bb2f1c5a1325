"""Run `kinship serve` as a real process on a free loopback port (tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
# ./local-cluster.sh's state directory (its default, or where KINSHIP_STATE_DIR points it)
STATE_DIR = Path(os.environ.get("KINSHIP_STATE_DIR", Path.home() / ".cache" / "kinship" / "cluster"))
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout_seconds: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds until GET url answers 200; fails if the process dies or time runs out."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_seconds:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.perf_counter() - start
        time.sleep(0.01)
    raise TimeoutError(f"{url} not ready after {timeout_seconds}s")


@contextlib.contextmanager
def kinship_serve(
    *args: str, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = port or free_port()
    cmd = [sys.executable, "-m", "kinship", "serve", "--port", str(port), "--log-format", "json", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean shutdown is part of what the tests exercise), SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


@contextlib.contextmanager
def extra_kube_scheduler(
    env: dict[str, str], config: dict[str, Any], name: str, *flags: str
) -> Iterator[subprocess.Popen[bytes]]:
    """One more stock kube-scheduler on a local cluster (`env`: its cluster.env), with `config`
    (a KubeSchedulerConfiguration, usually the cluster's rendered kinship config with a few fields
    changed) written to the state directory; healthy on return, stopped on exit. Logs go to
    `logs/<name>.log`."""
    state = Path(env["KINSHIP_STATE_DIR"])
    path = state / f"{name}-config.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    kc = env["KINSHIP_SCHEDULER_KUBECONFIG"]
    command = [
        f"{env['KINSHIP_KUBE_BIN_DIR']}/kube-scheduler",
        f"--config={path}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--profiling=false",
        *flags,
    ]
    with (state / "logs" / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"kube-scheduler {name} exited {proc.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"kube-scheduler {name} not healthy in 60 s; see {log.name}")
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def eventually(check: Callable[[], Any], timeout: float = 20.0, poll: float = 0.1) -> Any:
    """Poll until `check` returns a truthy value, and return it (watches deliver within
    milliseconds); AssertionError with the last value at `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout}s; last value {last!r}")
