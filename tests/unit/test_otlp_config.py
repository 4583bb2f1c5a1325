"""The receiver's config: defaults hold, and every bad field is reported at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from profiler.otlp import OtlpReceiverConfig


def test_defaults_listen_on_loopback_with_bounded_buffers() -> None:
    config = OtlpReceiverConfig()
    assert (config.host, config.port) == ("127.0.0.1", 4317)
    assert config.max_request_bytes == 4 * 1024 * 1024
    assert config.max_indexed_spans > config.max_pending_spans > 0


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as err:
        OtlpReceiverConfig(port=70000, max_request_bytes=0, match_window_seconds=-1, colour="blue")  # type: ignore[call-arg]
    assert {e["loc"][0] for e in err.value.errors()} == {
        "port",
        "max_request_bytes",
        "match_window_seconds",
        "colour",
    }
