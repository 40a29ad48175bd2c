"""Fetching a url_upload URL safely (by the input preparation in a worker, never in a request).

nova fetches any URL with no size cap and no guard against internal
addresses.  Here: http/https only; every address the host name resolves to
must be public unless an allow-listed network covers it; the connection goes
to the checked address (no second DNS lookup that could be rebound); redirects
are followed by hand and checked the same way; size and time are capped.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from skysolve.errors import FetchError

MAX_REDIRECTS = 5
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_url_syntax(url: str) -> None:
    """Raise ValueError unless ``url`` is an absolute http(s) URL with a host."""
    if not isinstance(url, str) or len(url) > 2000:
        raise ValueError("url must be a string of at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("url has no host name")
    if parts.username or parts.password:
        raise ValueError("url must not contain a user name or password")


def parse_networks(items: Sequence[str]) -> list[IpNetwork]:
    """Parse the allow-list (CIDR networks or single addresses); ValueError if malformed."""
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


def is_allowed_address(address: IpAddress, allow: Sequence[IpNetwork]) -> bool:
    if any(address in net for net in allow):
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int, allow: Sequence[IpNetwork]) -> str:
    """The first address of ``host``, refusing if any of its addresses is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError(f"cannot resolve {host}")
    for text in addresses:
        if not is_allowed_address(ipaddress.ip_address(text.split("%")[0]), allow):
            raise FetchError(f"refusing to fetch from {host}: {text} is not a public address")
    return addresses[0]


def fetch_url(
    url: str, dest: Path, *, max_bytes: int, timeout: float, allow: Sequence[str] = ()
) -> str:
    """Download ``url`` into ``dest``; return the file name the server suggests (or the URL's)."""
    networks = parse_networks(allow)
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            check_url_syntax(current)
        except ValueError as exc:
            raise FetchError(str(exc)) from None
        parts = urlsplit(current)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(host, port, networks)
        conn = _connection(parts.scheme, host, address, port, max(0.1, deadline - time.monotonic()))
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            conn.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "skysolve"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"redirect without a Location from {current}")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise FetchError(f"fetching {current} failed: HTTP {response.status}")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"the file at {current} is larger than {max_bytes} bytes")
            _copy(conn, response, dest, max_bytes, deadline)
            return parts.path.rstrip("/").rsplit("/", 1)[-1]
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"fetching {current} failed: {exc}") from None
        finally:
            conn.close()
    raise FetchError(f"too many redirects fetching {url}")


def _copy(
    conn: http.client.HTTPConnection,
    response: http.client.HTTPResponse,
    dest: Path,
    max_bytes: int,
    deadline: float,
) -> None:
    total = 0
    with dest.open("wb") as out:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise FetchError("fetching the URL took too long")
            # The socket's timeout bounds one read, and read1 returns what has
            # arrived: a server trickling a few bytes at a time cannot hold
            # the worker past the deadline.
            if conn.sock is not None:
                conn.sock.settimeout(left)
            try:
                chunk = response.read1(64 * 1024)
            except TimeoutError:
                raise FetchError("fetching the URL took too long") from None
            if not chunk:
                return
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"the file is larger than {max_bytes} bytes")
            out.write(chunk)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an already checked address whatever the host name resolves to now."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address
        self._tls_context = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # Certificate and SNI use the host name; only the TCP connection is pinned.
        self.sock = self._tls_context.wrap_socket(raw, server_hostname=self.host)


def _connection(
    scheme: str, host: str, address: str, port: int, timeout: float
) -> http.client.HTTPConnection:
    if scheme == "https":
        return _PinnedHTTPSConnection(host, address, port, timeout)
    return _PinnedHTTPConnection(host, address, port, timeout)
