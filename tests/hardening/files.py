"""Builders of hostile and ordinary files: small images, tar and zip archives, bombs.

Bombs are built from one compressed block repeated (gzip members and zip
entries may be concatenated), so making a 3 GB bomb costs one 64 MB compression.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
from astropy.io import fits
from PIL import Image

BLOCK = 64 * 1024 * 1024
SEED = 20261123


def png_bytes(width: int = 32, height: int = 24, *, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(SEED + seed).integers(0, 256, (height, width), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(width: int = 32, height: int = 24) -> bytes:
    pixels = np.random.default_rng(SEED).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def tiff_bytes(width: int = 32, height: int = 24) -> bytes:
    pixels = np.random.default_rng(SEED).integers(0, 65535, (height, width), dtype=np.uint16)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="TIFF")
    return out.getvalue()


def fits_bytes(width: int = 32, height: int = 24) -> bytes:
    pixels = np.random.default_rng(SEED).normal(100, 5, (height, width)).astype(np.float32)
    out = io.BytesIO()
    fits.PrimaryHDU(pixels).writeto(out)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header declaring a huge size, followed by a tiny image stream."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def fits_with_hdus(count: int) -> bytes:
    """A FITS file of ``count`` header-only HDUs (no image data anywhere)."""
    primary = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)])
    extension = fits.Header(
        [("XTENSION", "IMAGE"), ("BITPIX", 8), ("NAXIS", 0), ("PCOUNT", 0), ("GCOUNT", 1)]
    )
    ext = extension.tostring().encode()
    return primary.tostring().encode() + ext * (count - 1)


@cache
def _zeros_gzip_member() -> bytes:
    return gzip.compress(bytes(BLOCK), compresslevel=9)


def gzip_bomb(total: int, *, head: bytes = b"") -> bytes:
    """A gzip stream of ``head`` then at least ``total`` zero bytes, a few MB compressed."""
    return gzip.compress(head) + _zeros_gzip_member() * -(-total // BLOCK)


@dataclass(frozen=True)
class Entry:
    """One tar entry: a regular file unless ``kind`` says otherwise."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""


def tar_bytes(entries: list[Entry], *, compression: str = "") -> bytes:
    out = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=out, mode=mode, format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.linkname = entry.linkname
            info.mode = 0o644
            if entry.kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                if entry.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                tar.addfile(info)
    return out.getvalue()


def tar_bomb_gz(member_size: int, *, name: str = "zeros.fits") -> bytes:
    """A .tar.gz whose one member declares (and holds) ``member_size`` zero bytes."""
    info = tarfile.TarInfo(name)
    info.size = member_size
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    return gzip_bomb(member_size, head=header)


def zip_bytes(
    entries: list[tuple[str, bytes]], *, unix_modes: dict[str, int] | None = None
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 23, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = (unix_modes or {}).get(name)
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return out.getvalue()


@cache
def _zeros_deflate() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(bytes(BLOCK)) + compressor.flush()


def zip_bomb(members: int, *, declared_size: int | None = None) -> bytes:
    """``members`` entries of 64 MB of zeros each, deflated (64 KB each on disk).

    ``declared_size`` makes the entries lie about their uncompressed size.
    """
    blob = _zeros_deflate()
    crc = zlib.crc32(bytes(BLOCK))
    size = BLOCK if declared_size is None else declared_size
    body = io.BytesIO()
    directory = io.BytesIO()
    for i in range(members):
        name = f"zeros{i:03d}.fits".encode()
        offset = body.tell()
        body.write(
            struct.pack(
                "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(blob), size, len(name), 0
            )
        )
        body.write(name)
        body.write(blob)
        directory.write(
            struct.pack(
                "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(blob), size,
                len(name), 0, 0, 0, 0, 0, offset,
            )
        )  # fmt: skip
        directory.write(name)
    cd = directory.getvalue()
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, members, members, len(cd), body.tell(), 0)
    return body.getvalue() + cd + end
