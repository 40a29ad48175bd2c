import gzip
import io
import tarfile
import threading
import tracemalloc
from pathlib import Path

import pytest

from skysolve.engine.inputs.archives import archive_format, expand_archive
from skysolve.errors import (
    BadInputError,
    CorruptFileError,
    ImageTooLargeError,
    SolveCancelledError,
    UnsupportedFormatError,
)
from tests.hardening.files import (
    Entry,
    fits_bytes,
    jpeg_bytes,
    png_bytes,
    tar_bomb_gz,
    tar_bytes,
    zip_bomb,
    zip_bytes,
)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_it_recognises_tar_archives_by_content(tmp_path: Path, compression: str) -> None:
    data = tar_bytes([Entry("a.png", png_bytes())], compression=compression)
    path = _write(tmp_path / "misleading.fits", data)
    assert archive_format(path) == ("tar." + compression if compression else "tar")


def test_it_recognises_zip_and_v7_tar_archives(tmp_path: Path) -> None:
    assert archive_format(_write(tmp_path / "x.jpg", zip_bytes([("a.png", png_bytes())]))) == "zip"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        data = png_bytes()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    v7 = bytearray(out.getvalue())
    v7[257:265] = bytes(8)  # no "ustar" magic: only the checksum says tar
    checksum = sum(v7[:148]) + 8 * 32 + sum(v7[156:512])
    v7[148:156] = f"{checksum:06o}\x00 ".encode()
    assert archive_format(_write(tmp_path / "old", bytes(v7))) == "tar"


def test_it_does_not_take_images_or_compressed_images_for_archives(tmp_path: Path) -> None:
    for name, data in [
        ("a.fits", fits_bytes()),
        ("a.fits.gz", gzip.compress(fits_bytes())),
        ("a.png", png_bytes()),
        ("a.tar", b"x y\n1 2\n" * 100),
        ("empty.tar", b""),
        ("zeros.tar", bytes(1024)),
    ]:
        assert archive_format(_write(tmp_path / name, data)) is None, name


def test_it_takes_the_images_in_archive_order_under_its_own_names(tmp_path: Path) -> None:
    entries = [
        Entry("night1", kind=tarfile.DIRTYPE),
        Entry("night1/m42.png", png_bytes(seed=1)),
        Entry("night1/README.txt", b"clear skies\n"),
        Entry("night1/m31.fits", fits_bytes()),
        Entry("m45.jpg", jpeg_bytes()),
    ]
    archive = _write(tmp_path / "upload", tar_bytes(entries, compression="gz"))
    out = tmp_path / "out"
    expanded = expand_archive(archive, out)
    assert expanded.format == "tar.gz"
    assert [m.name for m in expanded.members] == ["night1/m42.png", "night1/m31.fits", "m45.jpg"]
    assert [m.path.name for m in expanded.members] == ["0000.png", "0001.fits", "0002.jpg"]
    assert [m.index for m in expanded.members] == [0, 1, 2]
    assert expanded.members[0].path.read_bytes() == png_bytes(seed=1)
    assert expanded.members[1].size == len(fits_bytes())
    assert expanded.skipped == [
        "night1/README.txt: not an image (text starting with 'clear skies')"
    ]
    assert "1 member(s) skipped" in expanded.summary()
    assert _files_under(out) == ["0000.png", "0001.fits", "0002.jpg"]


def test_it_keeps_a_compressed_fits_member_compressed(tmp_path: Path) -> None:
    data = zip_bytes([("a.fits.gz", gzip.compress(fits_bytes()))])
    expanded = expand_archive(_write(tmp_path / "a.zip", data), tmp_path / "out")
    assert expanded.members[0].path.name == "0000.fits.gz"


def test_it_skips_unsafe_names_links_devices_and_fifos_and_says_so(tmp_path: Path) -> None:
    entries = [
        Entry("../escape.png", png_bytes()),
        Entry("a/../../escape2.png", png_bytes()),
        Entry("/tmp/absolute.png", png_bytes()),
        Entry("C:\\windows.png", png_bytes()),
        Entry("link.png", kind=tarfile.SYMTYPE, linkname="/etc/passwd"),
        Entry("hard.png", kind=tarfile.LNKTYPE, linkname="good.png"),
        Entry("null", kind=tarfile.CHRTYPE),
        Entry("disk", kind=tarfile.BLKTYPE),
        Entry("pipe", kind=tarfile.FIFOTYPE),
        Entry("good.png", png_bytes()),
    ]
    root = tmp_path / "data"
    archive = _write(tmp_path / "hostile.tar", tar_bytes(entries))
    expanded = expand_archive(archive, root / "out")
    assert [m.name for m in expanded.members] == ["good.png"]
    reasons = dict(line.split(": ", 1) for line in expanded.skipped)
    assert reasons == {
        "../escape.png": "unsafe path (absolute or with '..')",
        "a/../../escape2.png": "unsafe path (absolute or with '..')",
        "/tmp/absolute.png": "unsafe path (absolute or with '..')",
        "C:\\windows.png": "unsafe path (absolute or with '..')",
        "link.png": "symbolic link (not followed)",
        "hard.png": "hard link (not followed)",
        "null": "device file",
        "disk": "device file",
        "pipe": "FIFO",
    }
    assert _files_under(tmp_path) == ["data/out/0000.png", "hostile.tar"]


def test_it_skips_zip_symlinks_and_devices(tmp_path: Path) -> None:
    data = zip_bytes(
        [("link.png", b"/etc/passwd"), ("dev", b""), ("ok.png", png_bytes()), ("../up.png", b"x")],
        unix_modes={"link.png": 0o120777, "dev": 0o020644, "ok.png": 0o100644},
    )
    expanded = expand_archive(_write(tmp_path / "a.zip", data), tmp_path / "out")
    assert [m.name for m in expanded.members] == ["ok.png"]
    assert expanded.skipped == [
        "link.png: symbolic link (not followed)",
        "dev: device file",
        "../up.png: unsafe path (absolute or with '..')",
    ]


def test_it_does_not_expand_archives_inside_the_archive(tmp_path: Path) -> None:
    inner = tar_bytes([Entry("deep.png", png_bytes())], compression="gz")
    data = zip_bytes(
        [
            ("inner.tar.gz", inner),
            ("inner.zip", zip_bytes([("x.png", b"")])),
            ("a.png", png_bytes()),
        ]
    )
    expanded = expand_archive(_write(tmp_path / "a.zip", data), tmp_path / "out")
    assert [m.name for m in expanded.members] == ["a.png"]
    assert expanded.skipped == [
        "inner.tar.gz: a tar.gz archive inside the archive (not expanded)",
        "inner.zip: a zip archive inside the archive (not expanded)",
    ]


def test_it_fails_clearly_when_no_image_is_left(tmp_path: Path) -> None:
    data = tar_bytes([Entry("../a.png", png_bytes()), Entry("empty.fits", b"")])
    out = tmp_path / "out"
    with pytest.raises(
        BadInputError, match=r"no usable image: \.\./a\.png: unsafe path.*empty\.fits: empty file"
    ):
        expand_archive(_write(tmp_path / "a.tar", data), out)
    assert _files_under(out) == []
    with pytest.raises(BadInputError, match="no usable image .it is empty"):
        expand_archive(_write(tmp_path / "b.zip", zip_bytes([])), out)


def test_it_names_at_most_twenty_skipped_members(tmp_path: Path) -> None:
    entries = [Entry(f"{i}.txt", b"notes") for i in range(25)] + [Entry("a.png", png_bytes())]
    expanded = expand_archive(_write(tmp_path / "a.tar", tar_bytes(entries)), tmp_path / "out")
    assert len(expanded.skipped) == 25
    summary = expanded.summary()
    assert "25 member(s) skipped: 0.txt: not an image" in summary
    assert "19.txt" in summary and "20.txt" not in summary
    assert summary.endswith("; and 5 more")


def test_it_refuses_a_file_that_is_no_archive(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="not a tar or zip archive"):
        expand_archive(_write(tmp_path / "a.tar", png_bytes()), tmp_path / "out")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_it_caps_the_number_of_members(tmp_path: Path, kind: str) -> None:
    files = [(f"{i}.png", png_bytes(seed=i)) for i in range(6)]
    data = tar_bytes([Entry(n, d) for n, d in files]) if kind == "tar" else zip_bytes(files)
    out = tmp_path / "out"
    with pytest.raises(ImageTooLargeError, match="more than the limit of 5 members"):
        expand_archive(_write(tmp_path / "a", data), out, max_members=5)
    assert _files_under(out) == []
    assert len(expand_archive(tmp_path / "a", out, max_members=6).members) == 6


def test_it_stops_at_the_byte_cap_while_extracting_and_removes_what_it_wrote(
    tmp_path: Path,
) -> None:
    entries = [Entry(f"{i}.fits", fits_bytes(256, 256)) for i in range(3)]  # 262 KB each
    out = tmp_path / "out"
    with pytest.raises(ImageTooLargeError, match="more than the limit of 600000 bytes"):
        expand_archive(_write(tmp_path / "a.tar", tar_bytes(entries)), out, max_bytes=600_000)
    assert _files_under(out) == []


def test_it_refuses_a_tar_bomb_from_its_declared_size_before_inflating(tmp_path: Path) -> None:
    path = _write(tmp_path / "bomb.tar.gz", tar_bomb_gz(3 * 1024**3))
    assert path.stat().st_size < 5_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError, match="more than the limit of 2147483648 bytes"):
            expand_archive(path, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024**2
    assert _files_under(tmp_path / "out") == []


def test_it_refuses_a_zip_bomb_from_its_declared_sizes(tmp_path: Path) -> None:
    path = _write(tmp_path / "bomb.zip", zip_bomb(40))  # 2.5 GB in 2.6 MB
    with pytest.raises(ImageTooLargeError, match="more than the limit of 2147483648 bytes"):
        expand_archive(path, tmp_path / "out")


def test_it_stops_a_zip_that_lies_about_its_sizes(tmp_path: Path) -> None:
    path = _write(tmp_path / "liar.zip", zip_bomb(3, declared_size=1000))
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match="damaged or truncated"):
            expand_archive(path, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024**2
    assert _files_under(tmp_path / "out") == []


def test_it_refuses_a_huge_tar_header_record_without_holding_it(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.png")
        info.pax_headers = {"comment": "x" * (4 * 1024 * 1024)}
        data = png_bytes()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ImageTooLargeError, match="header record larger than"):
        expand_archive(_write(tmp_path / "pax.tar.gz", out.getvalue()), tmp_path / "out")


@pytest.mark.parametrize("compression", ["", "gz"])
def test_it_reports_a_truncated_tar(tmp_path: Path, compression: str) -> None:
    data = tar_bytes([Entry("a.fits", fits_bytes(256, 256))], compression=compression)
    path = _write(tmp_path / "cut.tar", data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="tar.* archive is damaged or truncated"):
        expand_archive(path, tmp_path / "out")
    assert _files_under(tmp_path / "out") == []


def test_it_reports_a_truncated_or_damaged_zip(tmp_path: Path) -> None:
    data = zip_bytes([("a.fits", fits_bytes(256, 256)), ("b.png", png_bytes())])
    with pytest.raises(CorruptFileError, match="zip archive is damaged or truncated"):
        expand_archive(_write(tmp_path / "cut.zip", data[: len(data) - 40]), tmp_path / "out")
    damaged = bytearray(data)
    damaged[200:210] = b"\xff" * 10  # inside the first member's deflate stream
    with pytest.raises(CorruptFileError, match="zip archive is damaged or truncated"):
        expand_archive(_write(tmp_path / "bad.zip", bytes(damaged)), tmp_path / "out")
    assert _files_under(tmp_path / "out") == []


def test_it_stops_when_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def progress(message: str) -> None:
        seen.append(message)
        if len(seen) == 2:
            cancel.set()

    files = [(f"{i}.png", png_bytes(seed=i)) for i in range(4)]
    with pytest.raises(SolveCancelledError):
        expand_archive(
            _write(tmp_path / "a.zip", zip_bytes(files)),
            tmp_path / "out",
            cancel=cancel,
            progress=progress,
        )
    assert seen == ["archive member 1: 0.png", "archive member 2: 1.png"]
    assert _files_under(tmp_path / "out") == []


def test_it_rejects_bad_caps(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.zip", zip_bytes([("a.png", png_bytes())]))
    with pytest.raises(BadInputError, match="max_members must be a positive integer"):
        expand_archive(path, tmp_path / "out", max_members=0)
