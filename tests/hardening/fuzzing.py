"""Hostile requests for every operation of /api/openapi.json, as hypothesis strategies.

The operations come from the OpenAPI document the service serves, so a new
API URL is fuzzed as soon as it is documented (and tests/api/test_openapi.py
makes sure every routed URL is).  A request is drawn as plain values
(:class:`FuzzRequest`) that both the Django test client and ``requests``
against a live server can send.

``SKYSOLVE_FUZZ_PROFILE=long`` (optionally with ``SKYSOLVE_FUZZ_EXAMPLES=N``)
turns the short, derandomized CI run into a long random one.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Every request-json argument nova documents, plus skysolve's own.
KNOWN_KEYS = [
    "session", "apikey", "url", "x", "y", "flux", "image_width", "image_height", "subid",
    "query", "exact", "album", "allow_commercial_use", "allow_modifications",
    "publicly_visible", "scale_units", "scale_type", "scale_lower", "scale_upper",
    "scale_est", "scale_err", "center_ra", "center_dec", "radius", "downsample_factor",
    "tweak_order", "use_sextractor", "crpix_center", "invert", "parity", "positional_error",
    "timeout", "extractor", "max_sources", "use_hints",
]  # fmt: skip

NASTY_STRINGS = [
    "", " ", "NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e999", "-1e999", "-1",
    "0", "1e308", "1" * 400, "y", "n", "d", "sa", "ul", "ev", "degwidth", "focalmm",
    "../../etc/passwd", "/etc/passwd", "C:\\Windows\\win.ini", "a\x00b", "\x00",
    "; rm -rf /", "$(touch /tmp/skysolve-fuzz)", "`id`", "'\"", "\n\r", "%00", "%s%n",
    "http://127.0.0.1:1/x.jpg", "file:///etc/passwd", "ftp://example.invalid/", "javascript:1",
    "<script>alert(1)</script>", "\u202e\ufeff\U0001f52d", "a" * 70_000,
]  # fmt: skip

NASTY_JSON_TEXTS = [
    "", "{", "}", "null", "[]", "1", '"x"', "{'a': 1}", "NaN", '{"a": NaN}',
    '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e999}', '{"radius": 1e999}',
    '{"a": "\\u0000"}', '{"\\u0000": 1}', '{"session": "\\u0000"}', "\x00",
    "9" * 5000, "[" * 5000, '{"a":' * 3000, "{}" * 1000, '{"a": 1, "a": 2}',
    '{"x": [1e999], "y": [1]}', '{"parity": 1e400}', '{"tweak_order": 1e300}',
    '{"image_width": 1e300, "x": [1], "y": [1]}', '{"album": "\\ud800"}', "\xff\xfe",
    '{"session": "\\udfff"}',
]  # fmt: skip

#: Values PostgreSQL cannot store in jsonb or text (SQLite takes them all).
STORAGE_POISON: list[Any] = [
    float("nan"), float("inf"), float("-inf"), "\x00", "a\x00b", "\ud800", "x\udfff",
    10**400, -(10**400), 1e308, {"\x00": 1}, ["\ud800"], "NaN", "Infinity",
]  # fmt: skip

PATH_JUNK = [
    "-1", "0", "abc", "1.5", "0x10", "%00", "..%2F..%2Fetc%2Fpasswd", "1%20", "١٢٣",
    "99999999999999999999", "9" * 13, "2147483648", "1e3", "", "%2e%2e",
]  # fmt: skip


@dataclass(frozen=True)
class Operation:
    path: str  # with {placeholders}
    method: str
    params: tuple[str, ...]
    body_types: tuple[str, ...]


@dataclass
class FuzzRequest:
    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The request-json text a submission carries (None: not a submission).
    json_text: str | None = None
    #: False when a part's header holds a line break (a file name with one): no
    #: client sends that, and the service may refuse the body or read up to it.
    well_formed: bool = True

    def __repr__(self) -> str:  # short enough to read in a failure report
        body = self.body[:300]
        return f"FuzzRequest({self.method} {self.path[:300]!r} {self.content_type!r} {body!r})"


def operations(spec: dict[str, Any]) -> list[Operation]:
    """Every (path, method) of the OpenAPI document, with its path params and body types."""
    out: list[Operation] = []
    for path, item in sorted(spec["paths"].items()):
        for method, op in sorted(item.items()):
            params = tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path")
            body = tuple(op.get("requestBody", {}).get("content", {}))
            out.append(Operation(path, method.upper(), params, body))
    return out


@dataclass(frozen=True)
class Known:
    """Real values the fuzzer mixes in so that it gets past the first checks."""

    session: str
    ids: tuple[int, ...]


def _values(known: Known) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([10**30, -(10**30), 2**63, 2**31, -1, 0, 1, 2, 64, 1001]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
        st.sampled_from(NASTY_STRINGS),
        st.sampled_from([known.session, *known.ids]),
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=12,
    )


def _sessions(known: Known) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(known.session),
        st.sampled_from(
            ["", "bad", known.session + "x", known.session.upper(), "\x00", "a" * 10_000, 0]
        ),
        st.text(max_size=40),
        st.none(),
        st.lists(st.integers(), max_size=2),
    )


def request_json_texts(known: Known) -> st.SearchStrategy[str]:
    keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=20)
    objects = st.dictionaries(keys, _values(known), max_size=8)
    with_session = st.builds(lambda d, s: {**d, "session": s}, objects, _sessions(known))
    # Submissions that pass the first checks, carrying junk in unknown keys
    # (which end up stored as the request-json of the submission).
    unknown = st.dictionaries(st.text(max_size=12), _values(known), max_size=4)
    finite = st.floats(-1e6, 1e6)
    xy = st.builds(
        lambda stars, extra: {
            **extra,
            "session": known.session,
            "x": [x for x, _ in stars],
            "y": [y for _, y in stars],
        },
        st.lists(st.tuples(finite, finite), min_size=1, max_size=5),
        unknown,
    )
    url = st.builds(
        lambda link, extra: {**extra, "session": known.session, "url": link},
        st.sampled_from(["http://example.org/a.jpg", "https://[::1]/x", "http://0/"])
        | st.sampled_from(NASTY_STRINGS),
        unknown,
    )
    objects = st.one_of(objects, with_session, xy, xy, xy, url, url)
    return st.one_of(
        st.sampled_from(NASTY_JSON_TEXTS),
        st.text(max_size=60),
        objects.map(lambda d: json.dumps(d, allow_nan=True)),
        objects.map(lambda d: json.dumps(d, allow_nan=True)),
    )


def _multipart(
    fields: Sequence[tuple[str, str | None, bytes]], boundary: str, newline: bytes
) -> bytes:
    out = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}".encode() + newline
        out += f"Content-Disposition: {disposition}".encode("utf-8", "surrogatepass")
        out += b"\r\n\r\n" + data + newline
    return out + f"--{boundary}--".encode() + newline


def bodies(op: Operation, known: Known) -> st.SearchStrategy[tuple[bytes, str | None]]:
    texts = request_json_texts(known)
    form = st.builds(
        lambda text, extra: (
            urlencode({"request-json": text, **extra}).encode(),
            "application/x-www-form-urlencoded",
        ),
        texts,
        st.dictionaries(
            st.sampled_from(["session", "query", "exact", "junk"]), st.text(max_size=10)
        ),
    )
    filenames = st.sampled_from(
        [
            "m66.fits",
            "../../etc/passwd",
            "/etc/passwd",
            "a\x00b.jpg",
            "$(touch x).png",
            "",
            "x" * 300,
        ]
    ) | st.text(max_size=20)
    multipart = st.builds(
        lambda text, filename, data, boundary, newline, with_file: (
            _multipart(
                [("request-json", None, text.encode("utf-8", "surrogatepass"))]
                + ([("file", filename, data)] if with_file else []),
                boundary,
                newline,
            ),
            f'multipart/form-data; boundary="{boundary}"',
        ),
        texts,
        filenames,
        st.binary(max_size=200),
        st.sampled_from(["xYz", "===============123==", "a" * 70]),
        st.sampled_from([b"\r\n", b"\n"]),
        st.booleans(),
    )
    junk_multipart = st.builds(
        lambda data, ct: (data, ct),
        st.binary(max_size=300),
        st.sampled_from(
            [
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "multipart/form-data; boundary=xYz",
                'multipart/form-data; boundary="\x00"',
                "multipart/mixed; boundary=" + "b" * 300,
            ]
        ),
    )
    other = st.builds(
        lambda data, ct: (data, ct),
        st.binary(max_size=100),
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
    )
    # Mostly bodies a real client could have meant, so that requests get past
    # the first checks into the services.
    choices = [form, form, form, junk_multipart, other, st.just((b"", None))]
    if "multipart/form-data" in op.body_types:
        choices = [multipart, multipart, multipart, *choices]
    return st.one_of(*choices)


def _path_value(known: Known) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([str(i) for i in known.ids]),
        st.integers(min_value=0, max_value=10**13).map(str),
        st.sampled_from(PATH_JUNK),
    )


def requests_for(op: Operation, known: Known) -> st.SearchStrategy[FuzzRequest]:
    def build(
        values: dict[str, str],
        slash: bool,
        query: dict[str, str],
        method: str,
        body: tuple[bytes, str | None],
    ) -> FuzzRequest:
        path = op.path
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        if slash and not path.endswith(".json"):
            path += "/"
        if query:
            path += "?" + urlencode(query)
        data, content_type = body if method == "POST" else (b"", None)
        return FuzzRequest(method, path, data, content_type)

    query_values = st.one_of(
        st.sampled_from(NASTY_STRINGS[:-1]), st.text(max_size=20), _sessions(known).map(str)
    )
    return st.builds(
        build,
        st.fixed_dictionaries({name: _path_value(known) for name in op.params}),
        st.booleans(),
        st.dictionaries(
            st.sampled_from(["session", "request-json", "query", "exact", "junk"]),
            query_values,
            max_size=3,
        ),
        # Documented methods mostly, sometimes others: they must be refused cleanly.
        st.sampled_from([op.method] * 6 + ["GET", "POST", "PUT", "DELETE", "PATCH"]),
        bodies(op, known),
    )


def any_request(spec: dict[str, Any], known: Known) -> st.SearchStrategy[FuzzRequest]:
    """Any operation; those that take a body (and write to the database) five times as often."""
    ops = operations(spec)
    weighted = [op for op in ops for _ in range(5 if op.body_types else 1)]
    return st.one_of(*[requests_for(op, known) for op in weighted])


def submission_requests(known: Known) -> st.SearchStrategy[FuzzRequest]:
    """Submissions that get past the session and input checks, junk in every other key.

    These reach the services and the database (request-json is stored), where
    a value PostgreSQL cannot store would only show up.
    """
    finite = st.floats(-1e6, 1e6)
    poison = st.sampled_from(STORAGE_POISON)
    extras = st.dictionaries(
        st.text(max_size=12) | poison.filter(lambda v: isinstance(v, str)),
        poison | _values(known),
        max_size=5,
    )
    stars = st.lists(st.tuples(finite, finite), min_size=1, max_size=5)

    def xy(extra: dict[str, Any], points: list[tuple[float, float]]) -> FuzzRequest:
        args = {**extra, "session": known.session}
        args.update(x=[p[0] for p in points], y=[p[1] for p in points])
        text = json.dumps(args, allow_nan=True)
        form = urlencode({"request-json": text}).encode()
        return FuzzRequest(
            "POST", "/api/url_upload", form, "application/x-www-form-urlencoded", json_text=text
        )

    def upload(extra: dict[str, Any], filename: str, data: bytes) -> FuzzRequest:
        text = json.dumps({**extra, "session": known.session}, allow_nan=True)
        fields = [("request-json", None, text.encode()), ("file", filename, data)]
        body = _multipart(fields, "xYz", b"\r\n")
        return FuzzRequest(
            "POST",
            "/api/upload",
            body,
            'multipart/form-data; boundary="xYz"',
            json_text=text,
            well_formed="\n" not in filename,
        )

    names = st.sampled_from(NASTY_STRINGS[:-1]) | st.text(max_size=30)
    return st.one_of(
        st.builds(xy, extras, stars),
        st.builds(upload, extras, names, st.binary(min_size=1, max_size=64)),
    )


def storable_submission(text: str) -> bool:
    """Whether a submission's request-json must be stored: a JSON object of
    finite numbers whose text PostgreSQL can hold (no NUL, no lone surrogate)."""

    def refuse(token: str) -> Any:
        raise ValueError(token)

    try:
        value = json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return isinstance(value, dict) and _storable(value)


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def fixed_requests(spec: dict[str, Any], known: Known) -> list[FuzzRequest]:
    """The same hostile inputs for EVERY documented operation (no luck involved)."""
    out: list[FuzzRequest] = []
    for op in operations(spec):
        base = op.path
        for name in op.params:
            base = base.replace("{" + name + "}", str(known.ids[0]))
        bad_ids = [
            op.path.replace("{" + name + "}", quote(v)) for name in op.params for v in PATH_JUNK
        ]
        for path in [base, base + "/", *bad_ids]:
            out.append(FuzzRequest(op.method, path))
        for text in [*NASTY_JSON_TEXTS, json.dumps({"session": known.session, "a": "\x00"})]:
            out.append(
                FuzzRequest(
                    "POST",
                    base,
                    urlencode({"request-json": text}).encode(),
                    "application/x-www-form-urlencoded",
                )
            )
        for session in ["bad", "\x00", "a" * 10_000]:
            out.append(FuzzRequest("GET", base + "?" + urlencode({"session": session})))
        out.append(FuzzRequest("POST", base, b"junk", "multipart/form-data; boundary=xYz"))
        out.append(FuzzRequest("POST", base, b"junk", "multipart/form-data"))
        out.append(FuzzRequest("PUT", base))
    return out


def check_answer(request: FuzzRequest, status: int, content_type: str, body: bytes) -> None:
    """Never 5xx; every error in nova's shape; every JSON answer a JSON object."""
    assert status < 500, (request, status, body[:500])
    assert status == 200 or 400 <= status < 500, (request, status)
    if request.method == "HEAD":
        assert body == b"", (request, status, body[:300])
        return
    is_json = content_type.startswith(("text/plain", "application/json")) and not re.match(
        r"^/joblog/", request.path
    )
    if status >= 400 or is_json:
        try:
            data = json.loads(body)
        except ValueError:
            raise AssertionError(f"not JSON: {request!r} {status} {body[:300]!r}") from None
        assert isinstance(data, dict), (request, body[:200])
        if status >= 400 and "openapi" not in data:
            assert data.get("status") == "error", (request, status, body[:300])
        if data.get("status") == "error":
            assert isinstance(data.get("errormessage"), str) and data["errormessage"], data


def fuzz_settings(default_examples: int) -> settings:
    """Short and reproducible by default; SKYSOLVE_FUZZ_PROFILE=long for a real search."""
    long_run = os.environ.get("SKYSOLVE_FUZZ_PROFILE", "") == "long"
    examples = int(os.environ.get("SKYSOLVE_FUZZ_EXAMPLES", 0)) or (
        default_examples * 50 if long_run else default_examples
    )
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not long_run,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=long_run,
    )
