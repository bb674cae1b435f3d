"""The JSON schema patterns that stand for a parser say exactly what the parser says.

The API's document carries patterns built to match a validator (a camera host, a relay URL, an RTSP stream
URI, a panel size); schemathesis generates requests from them, so a pattern looser or stricter than its
validator is a contract failure. Here each pattern and its validator judge the same strings: ones drawn
from the pattern, and random ones over the characters that matter.
"""

from __future__ import annotations

import re
import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.signs import PANEL_SIZE_PATTERN
from controller.cameras.schemas import STREAM_URI_PATTERN, stream_uri_problem
from devices.led.content import Panel
from devices.protocol.cameras import HOST_PATTERN, valid_host
from devices.protocol.segments import relay_url_error, relay_url_pattern

EXAMPLES = settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _stream_ok(uri: str) -> bool:
    return stream_uri_problem(uri) is None and urllib.parse.urlsplit(uri).username is None


def _panel_ok(text: str) -> bool:
    try:
        Panel.parse(text)
    except ValueError:
        return False
    return True


CASES = [
    (HOST_PATTERN, valid_host, "0123456789abcdefABX:.%-/", 253),
    (relay_url_pattern(), lambda url: relay_url_error(url) is None, "hHtTpPsS:/@[]?#a1.%8 \n\u200bv", 2000),
    (STREAM_URI_PATTERN, _stream_ok, "rRtTsSpP:/@[]?#a1.%8 \nv", 1000),
    (PANEL_SIZE_PATTERN, _panel_ok, "0123456789xX× ", 100),
]
FIXED = ["::", "::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "::ffff:1.2.3.4", "fe80::1%eth0", "fe80::1%a/b",
         "01.2.3.4", "a..b", "http://a:65536", "http://a:00080", "http://[::1]:8/", "http://[0]", "http://h\n",
         "rtsp://u@h/", "RTSP://cam:554/s", "96x16", "7x7", "1920x1080", "1921x16", " 0096 × 0016 "]


def _agree(pattern: str, valid: object, text: str, longest: int) -> None:
    assert callable(valid)
    if len(text) <= longest:
        assert bool(re.search(pattern, text)) == valid(text), (pattern[:40], text)


def test_fixed_cases() -> None:
    for pattern, valid, _alphabet, longest in CASES:
        for text in FIXED:
            _agree(pattern, valid, text, longest)


@EXAMPLES
@given(st.data())
def test_drawn_from_the_pattern(data: st.DataObject) -> None:
    for pattern, valid, _alphabet, longest in CASES:
        _agree(pattern, valid, data.draw(st.from_regex(pattern)), longest)


@EXAMPLES
@given(st.data())
def test_random_strings(data: st.DataObject) -> None:
    for pattern, valid, alphabet, longest in CASES:
        _agree(pattern, valid, data.draw(st.text(alphabet=alphabet, max_size=30)), longest)
