"""`kinship profile --otlp-listen`: the receiver wired into the profiler's loop, as a real process.
Spans go over real gRPC; the AgentGraph file the loop writes must carry the edge."""

from __future__ import annotations

import signal
import subprocess
import time

import grpc
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.otlp_spans import request, resource_spans, span
from tests.serving import ROOT, free_port

pytestmark = pytest.mark.integration
KINSHIP = str(ROOT / ".venv" / "bin" / "kinship")


def test_profile_loop_turns_received_spans_into_an_agent_graph(tmp_path) -> None:
    out = tmp_path / "observed.yaml"
    port = free_port()
    proc = subprocess.Popen(
        [
            KINSHIP,
            "profile",
            "--mesh",
            "",
            "--otlp-listen",
            f"127.0.0.1:{port}",
            "--out",
            str(out),
            "--interval",
            "1",
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = TraceServiceStub(channel)
        deadline = time.monotonic() + 30
        n = 0
        while not out.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "no AgentGraph file written in 30 s"
            stub.Export(
                request(
                    resource_spans("orchestrator", [span(1000 + 2 * n, Span.SPAN_KIND_CLIENT, trace=n + 1)]),
                    resource_spans(
                        "planner",
                        [span(1001 + 2 * n, Span.SPAN_KIND_SERVER, parent=1000 + 2 * n, trace=n + 1)],
                    ),
                )
            )
            n += 1
            time.sleep(0.2)
        channel.close()
        (doc,) = [d for d in yaml.safe_load_all(out.read_text()) if d]
        assert doc["metadata"]["namespace"] == "team"
        (edge,) = doc["status"]["observedEdges"]
        assert (edge["from"], edge["to"]) == ("orchestrator", "planner")
        assert edge["requestsPerSecond"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--mesh", "", "--otlp-listen", "127.0.0.1:0", "--once"], "--once"),
        (["--mesh", "", "--out", "x.yaml"], "no telemetry source"),
        (["--otlp-listen", "nonsense"], "--otlp-listen"),
    ],
)
def test_bad_source_options_are_refused_with_a_clear_error(args: list[str], named: str, tmp_path) -> None:
    done = subprocess.run(
        [KINSHIP, "profile", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
