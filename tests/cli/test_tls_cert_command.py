"""``skysolve tls-cert``: the certificate a LAN install puts in front of skysolve."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from skysolve.cli import main
from skysolve.cli.tls_cert import MAX_DAYS, host_addresses, host_names


def load(out: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    certificate = x509.load_pem_x509_certificate((out / "skysolve.crt").read_bytes())
    key = serialization.load_pem_private_key((out / "skysolve.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return certificate, key


def alternative_names(certificate: x509.Certificate) -> tuple[list[str], list[str]]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    ]


def test_it_names_the_given_names_and_addresses(tmp_path: Path) -> None:
    status = main(
        ["tls-cert", "--no-detect", "--name", "skysolve.lan", "--name", "astro-pi",
         "--ip", "192.168.1.20", "--ip", "fd00::20", "--out", str(tmp_path)]
    )  # fmt: skip
    assert status == 0
    certificate, key = load(tmp_path)
    names, addresses = alternative_names(certificate)
    assert names == ["skysolve.lan", "astro-pi"]
    assert addresses == ["192.168.1.20", "fd00::20"]
    assert certificate.subject == certificate.issuer  # self-signed
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == key.public_key().public_numbers()
    # Signed by its own key (raises if not).
    signed = certificate.tbs_certificate_bytes
    key.public_key().verify(certificate.signature, signed, padding.PKCS1v15(), hashes.SHA256())
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in usage
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=MAX_DAYS, minutes=5)
    assert stat.S_IMODE((tmp_path / "skysolve.key").stat().st_mode) == 0o600


def test_it_names_this_hosts_own_names_and_addresses(tmp_path: Path) -> None:
    assert main(["tls-cert", "--out", str(tmp_path)]) == 0
    names, addresses = alternative_names(load(tmp_path)[0])
    assert socket.gethostname() in names and "localhost" in names
    assert "127.0.0.1" in addresses and "::1" in addresses
    assert set(addresses) == {str(a) for a in host_addresses()}
    assert names == host_names()
    assert not any(ipaddress.ip_address(a).is_link_local for a in addresses)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ip", "192.168.1.300"], "does not appear to be an IPv4 or IPv6 address"),
        (["--days", "900"], "--days must be 1..825"),
        (["--no-detect"], "no name or address"),
    ],
)
def test_it_refuses_bad_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["tls-cert", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "skysolve.crt").exists()


def test_it_keeps_an_existing_certificate_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls-cert", "--no-detect", "--name", "a.lan", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "skysolve.crt").read_bytes()
    assert main(["tls-cert", "--no-detect", "--name", "b.lan", "--out", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "skysolve.crt").read_bytes() == first
    args = ["tls-cert", "--no-detect", "--name", "b.lan", "--out", str(tmp_path), "--force"]
    assert main(args) == 0
    assert alternative_names(load(tmp_path)[0])[0] == ["b.lan"]


@contextmanager
def https_server(cert: Path, key: Path) -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def handshake(port: int, trusted: Path, host: str) -> None:
    context = ssl.create_default_context(cafile=str(trusted))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host):
            pass


def test_it_is_trusted_by_address_where_a_common_name_only_certificate_is_not(
    tmp_path: Path,
) -> None:
    """What a client that checks names (StellarSolver 2.5+, browsers) sees when it is
    pointed at https://ADDRESS with the certificate in its trust store."""
    good = tmp_path / "good"
    assert main(["tls-cert", "--no-detect", "--ip", "127.0.0.1", "--out", str(good)]) == 0
    with https_server(good / "skysolve.crt", good / "skysolve.key") as port:
        handshake(port, good / "skysolve.crt", "127.0.0.1")
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|match"):
            handshake(port, good / "skysolve.crt", "skysolve.lan")
    # The certificate deploy/nginx-skysolve.conf used to make: a common name only.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    old = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "old.crt").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "old.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    with https_server(tmp_path / "old.crt", tmp_path / "old.key") as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|match"):
            handshake(port, tmp_path / "old.crt", "127.0.0.1")
