"""The binder reaches the API server the way the kubernetes client's watches do."""

from __future__ import annotations

import pytest
from kubernetes import client

from extender.binder import Binder


def configuration(proxy: str | None, no_proxy: str | None = None) -> client.Configuration:
    c = client.Configuration()
    c.host = "https://10.96.0.1:443"
    c.proxy = proxy
    c.no_proxy = no_proxy
    return c


def test_no_proxy_matching_the_api_server_sends_bindings_direct() -> None:
    assert Binder(configuration("http://proxy:3128", "10.96.0.0/12,.svc"), 4)._proxy is None
    assert Binder(configuration("http://proxy:3128", "example.com"), 4)._proxy == "http://proxy:3128"
    assert Binder(configuration(None), 4)._proxy is None


def test_a_socks_proxy_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="SOCKS proxy"):
        Binder(configuration("socks5://proxy:1080"), 4)
