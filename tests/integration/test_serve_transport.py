"""`kinship serve`'s transports as real processes: the verbs and the operations endpoints on two
listeners, each answering only its own paths; HTTPS that answers only clients with a certificate
the configured CA signed."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.pki import CA, Pair
from tests.serving import EXAMPLES, free_port, kinship_serve, wait_ready

OFFLINE = ["--snapshot", str(EXAMPLES / "cluster-snapshot.json"), "--graph", str(EXAMPLES / "ops-team-graph.yaml")]


def filter_body() -> dict[str, object]:
    snapshot = json.loads((EXAMPLES / "cluster-snapshot.json").read_text())
    nodes = [item["metadata"]["name"] for item in snapshot["items"] if item["kind"] == "Node"]
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": []}}
    return {"Pod": pod, "Nodes": None, "NodeNames": nodes}


def test_with_an_ops_port_the_verbs_port_serves_only_verbs_and_the_ops_port_only_probes() -> None:
    ops = free_port()
    with kinship_serve(*OFFLINE, "--ops-host", "127.0.0.1", "--ops-port", str(ops)) as (url, proc):
        ops_url = f"http://127.0.0.1:{ops}"
        wait_ready(f"{ops_url}/readyz", timeout_seconds=30, proc=proc)
        answer = httpx.post(f"{url}/filter", json=filter_body())
        assert answer.status_code == 200 and answer.json()["NodeNames"], answer.text
        for path in ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/openapi.json"):
            assert httpx.get(f"{url}{path}").status_code == 404, path
        for verb in ("/filter", "/prioritize", "/bind"):
            assert httpx.post(f"{ops_url}{verb}", json=filter_body()).status_code in (404, 405), verb
        assert httpx.get(f"{ops_url}/livez").text == "ok"
        # the verbs' calls count in the ops listener's metrics: one process, one registry
        metrics = httpx.get(f"{ops_url}/metrics").text
        assert 'kinship_extender_requests_total{code="200",verb="filter"} 1.0' in metrics
        proc.terminate()  # both listeners drain and the process exits on one SIGTERM
        assert proc.wait(timeout=10) in (0, -15)
        log = proc.stdout.read().decode() if proc.stdout else ""
    assert log.count("Application shutdown complete.") == 2, log


def test_the_ops_port_must_differ_from_the_verbs_port() -> None:
    port = free_port()
    with kinship_serve(*OFFLINE, "--ops-host", "127.0.0.1", "--ops-port", str(port), port=port) as (_, proc):
        assert proc.wait(timeout=30) == 2
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert "--ops-port" in out and "Traceback" not in out


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    root = tmp_path_factory.mktemp("pki")
    ca, rogue = CA.create(root / "ca", "kinship-extender-ca"), CA.create(root / "rogue", "rogue-ca")
    return {
        "ca": ca.pair,
        "server": ca.issue("kinship-extender", "serverAuth", "IP:127.0.0.1"),
        "scheduler": ca.issue("kinship-scheduler", "clientAuth"),
        "rogue": rogue.issue("kinship-scheduler", "clientAuth"),
    }


def mtls_args(pki: dict[str, Pair]) -> list[str]:
    return ["--tls-cert-file", str(pki["server"].cert), "--tls-key-file", str(pki["server"].key),
            "--client-ca-file", str(pki["ca"].cert)]  # fmt: skip


def client_context(pki: dict[str, Pair], pair: Pair | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"].cert))
    if pair is not None:
        context.load_cert_chain(pair.cert, pair.key)
    return context


def test_https_answers_a_client_whose_certificate_the_ca_signed_and_no_one_else(pki: dict[str, Pair]) -> None:
    ops = free_port()
    args = [*OFFLINE, *mtls_args(pki), "--ops-host", "127.0.0.1", "--ops-port", str(ops)]
    with kinship_serve(*args) as (url, proc):
        https = url.replace("http://", "https://")
        wait_ready(f"http://127.0.0.1:{ops}/readyz", timeout_seconds=30, proc=proc)  # the kubelet's view
        good = httpx.post(f"{https}/filter", json=filter_body(), verify=client_context(pki, pki["scheduler"]))
        assert good.status_code == 200 and good.json()["NodeNames"], good.text
        for name, pair in (("no certificate", None), ("another CA's certificate", pki["rogue"])):
            with pytest.raises(httpx.TransportError):  # refused in the handshake: no status, no body
                httpx.post(f"{https}/bind", json=filter_body(), verify=client_context(pki, pair))
            print(f"{name}: refused")
        with pytest.raises(httpx.TransportError):  # and plain HTTP gets no answer either
            httpx.post(f"{url}/filter", json=filter_body())
        # the process still serves the real client afterwards
        again = httpx.post(f"{https}/filter", json=filter_body(), verify=client_context(pki, pki["scheduler"]))
        assert again.status_code == 200


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (["--tls-cert-file", "server.crt", "--tls-key-file", "server.key"], "--client-ca-file is required"),
        (["--client-ca-file", "ca.crt"], "--tls-cert-file is required"),
        (["--tls-cert-file", "missing.crt", "--tls-key-file", "server.key", "--client-ca-file", "ca.crt"],
         "--tls-cert-file: no such file"),
        (["--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--client-ca-file", "server.key"],
         "--client-ca-file: cannot load CA certificates"),
    ],
)  # fmt: skip
def test_incomplete_or_unloadable_tls_flags_are_a_usage_error_naming_the_flag(
    pki: dict[str, Pair], tmp_path: Path, given: list[str], named: str
) -> None:
    files = {"server.crt": pki["server"].cert, "server.key": pki["server"].key, "ca.crt": pki["ca"].cert}
    args = [str(files.get(a, tmp_path / a)) if not a.startswith("--") else a for a in given]
    with kinship_serve(*OFFLINE, *args) as (_, proc):
        assert proc.wait(timeout=30) == 2
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert named in out and "Traceback" not in out, out
