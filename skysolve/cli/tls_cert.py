"""``skysolve tls-cert``: a self-signed TLS certificate for a LAN install.

KStars/Ekos (StellarSolver 2.5 and later) reaches an astrometry.net server only over
``https://`` and accepts only a certificate that the operating system trusts and
whose subjectAltNames match the host in the URL; a certificate with a common name
alone fails as soon as KStars is pointed at an IP address.  This command writes a
certificate naming every name and address this host answers to (or the ones given),
for nginx (``deploy/nginx-skysolve.conf``) and for the clients' trust stores (docs/running.md,
"TLS on a LAN").
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

#: Apple's platforms reject TLS server certificates valid for longer than this.
MAX_DAYS = 825


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tls-cert",
        help="write a self-signed TLS certificate naming this host's names and addresses",
        description=(
            "Write OUT/skysolve.crt and OUT/skysolve.key: a self-signed certificate whose "
            "subjectAltNames are this host's names and addresses (or those given), so "
            "KStars, NINA and browsers can reach https://NAME or https://ADDRESS once the "
            "certificate is in their trust store."
        ),
    )
    parser.add_argument("--name", action="append", default=[], help="a DNS name (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="an IP address (repeatable)")
    parser.add_argument(
        "--no-detect",
        action="store_true",
        help="only the names and addresses given, not this host's own",
    )
    parser.add_argument("--days", type=int, default=MAX_DAYS, help=f"validity (at most {MAX_DAYS})")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing certificate and key"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        addresses = [ipaddress.ip_address(a) for a in args.ip]
    except ValueError as error:
        print(f"skysolve tls-cert: {error}", file=sys.stderr)
        return 2
    if not 1 <= args.days <= MAX_DAYS:
        print(f"skysolve tls-cert: --days must be 1..{MAX_DAYS}", file=sys.stderr)
        return 2
    names = list(args.name)
    if not args.no_detect:
        names += host_names()
        addresses += host_addresses()
    names, addresses = _unique(names), _unique(addresses)
    if not names and not addresses:
        print("skysolve tls-cert: no name or address to certify", file=sys.stderr)
        return 2
    cert_path, key_path = args.out / "skysolve.crt", args.out / "skysolve.key"
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not args.force:
        print(f"skysolve tls-cert: {existing[0]} exists (--force replaces it)", file=sys.stderr)
        return 2
    certificate, key = make_certificate(names, addresses, days=args.days)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(key_path, key, mode=0o600)
    _write(cert_path, certificate, mode=0o644)
    print(f"wrote {cert_path} and {key_path}")
    print("names:     " + (", ".join(names) or "(none)"))
    print("addresses: " + (", ".join(str(a) for a in addresses) or "(none)"))
    print("Put skysolve.crt in each client's trust store (docs/running.md, 'TLS on a LAN').")
    return 0


def make_certificate(
    names: Sequence[str], addresses: Sequence[IPAddress], *, days: int = MAX_DAYS
) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) and its RSA key (PEM, unencrypted).

    RSA 2048 and SHA-256 because every client TLS stack in the field takes them;
    a CA flag because some trust stores (macOS's, Windows') take a self-signed
    certificate as a root only then; serverAuth and at most 825 days because Apple
    rejects TLS server certificates without them.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names and not addresses:
        raise ValueError("a certificate needs at least one name or address")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    common_name = names[0] if names else str(addresses[0])
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "skysolve"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    alternatives: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alternatives += [x509.IPAddress(a) for a in addresses]
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def host_names() -> list[str]:
    """This host's name, its fully qualified name, its mDNS name and localhost."""
    short = socket.gethostname().strip()
    names = [short, socket.getfqdn().strip()]
    if short and "." not in short:
        names.append(short + ".local")  # what Avahi/Bonjour answer on a LAN
    names.append("localhost")
    return [n for n in _unique(names) if n and _is_dns_name(n)]


def host_addresses() -> list[IPAddress]:
    """Every address of this host's interfaces (``ip -o addr``), loopback included.

    Link-local IPv6 addresses are left out: a URL can name them only with a zone
    index, which certificates cannot carry.
    """
    found: list[IPAddress] = []
    ip = shutil.which("ip")
    if ip is not None:
        listing = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [ip, "-o", "addr", "show"], capture_output=True, text=True, timeout=10
        )
        for line in listing.stdout.splitlines():
            fields = line.split()
            for family, value in zip(fields, fields[1:], strict=False):
                if family in ("inet", "inet6"):
                    found.append(ipaddress.ip_address(value.split("/")[0]))
    else:  # no iproute2: what the resolver says about our own name
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
    found += [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    return [a for a in _unique(found) if not a.is_link_local]


def _is_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        for label in labels
    )


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))


def _write(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(temporary, mode)
    temporary.replace(path)
