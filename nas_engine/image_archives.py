"""Read an uploaded image archive safely: the ``ArchiveLimits`` an upload must respect, and readers of
a zip and of a tar (.tar.gz, .tgz; by a small reader of its own, not ``tarfile``) that check them
while reading: the number of members, their sizes as read (not as declared), the compression ratio,
names that point outside the archive, links and special files. An .npz is a zip too, and is checked
by ``check_npz_archive``. What they give back, each member's name and an image file's bytes, is
decoded into an image set by ``images``."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from nas_engine import runtime
from nas_engine.errors import DatasetError

# A high ratio is only dangerous when the member is large; a 4 KB run of zeros is no bomb.
RATIO_MIN_BYTES = 1 << 20
# A tar's extended headers (a GNU long name, pax attributes) are read whole before the member they
# describe: a 50 MB long name must not become 50 MB of memory. A real one is a path (at most 4 KB on
# Linux) and a few attributes; 64 KB leaves room for a Mac's extended attributes.
MAX_TAR_HEADER_BYTES = 64 << 10
# A zip's central directory entry: its fixed part and at most this much name, extra field and comment.
MAX_ZIP_ENTRY_EXTRA = 4096
_IGNORED_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})
_MB = 2**20


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds an uploaded archive must respect, checked while it is read."""

    max_files: int = 20_000  # members in the archive
    max_total_bytes: int = 512 * _MB  # uncompressed, counted while reading (headers can lie)
    max_file_bytes: int = 10 * _MB  # one member
    max_ratio: float = 200.0  # uncompressed/compressed of one member: more is a zip bomb
    max_side: int = runtime.MAX_IMAGE_SIDE  # a decoded image's side (also stops decompression bombs)

    def to_dict(self) -> dict:
        return {
            "max_files": self.max_files,
            "max_total_bytes": self.max_total_bytes,
            "max_file_bytes": self.max_file_bytes,
            "max_ratio": self.max_ratio,
            "max_side": self.max_side,
        }


DEFAULT_ARCHIVE_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Entry:
    """One member of an archive: its name as stored (for messages), its path parts, and its bytes
    when it is an image file to decode."""

    name: str
    parts: tuple[str, ...]
    is_dir: bool
    data: bytes | None = None


class _Budget:
    """Counts the bytes actually read against the limits (a header's sizes are not trusted)."""

    def __init__(self, limits: ArchiveLimits):
        self.limits = limits
        self.total = 0

    def add(self, name: str, size: int, compressed: int | None) -> None:
        limits = self.limits
        if compressed is not None and size > RATIO_MIN_BYTES and size > limits.max_ratio * max(compressed, 1):
            raise _bomb_error(f"'{name}'", size / max(compressed, 1), limits)
        if size > limits.max_file_bytes:
            raise DatasetError(
                f"'{name}' is larger than {limits.max_file_bytes / _MB:g} MB, the most one file may be. Shrink it "
                "or leave it out, and upload again."
            )
        self.total += size
        if self.total > limits.max_total_bytes:
            raise DatasetError(
                f"The archive expands to more than {limits.max_total_bytes / _MB:g} MB, the most this server "
                "accepts. Upload fewer or smaller images."
            )


def _bomb_error(what: str, ratio: float, limits: ArchiveLimits) -> DatasetError:
    return DatasetError(
        f"{what} expands to far more than it stores ({ratio:,.0f} times its compressed size; the limit is "
        f"{limits.max_ratio:g} times), as a zip bomb does, so the upload was refused. If the files are genuine, "
        "upload a plain zip of the PNG or JPEG images."
    )


def _parts(name: str) -> tuple[str, ...]:
    """The path parts of a member name, refusing names that could point outside the archive."""
    unsafe = (
        name.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in re.split(r"[\\/]", name)
        or "\x00" in name
    )
    if unsafe:
        raise DatasetError(
            f"The archive holds a file with an unsafe name ('{name}'): it points outside the archive "
            "(an absolute path, a drive letter or '..'). Zip the class folders themselves and upload again."
        )
    # Windows tools sometimes store '\' as the separator.
    return tuple(part for part in re.split(r"[\\/]", name) if part not in ("", "."))


def _refuse_link(name: str) -> DatasetError:
    return DatasetError(
        f"The archive holds a link ('{name}'). Links are refused because they can point outside the archive; "
        "zip the image files themselves and upload again."
    )


def _refuse_special(name: str) -> DatasetError:
    return DatasetError(
        f"The archive holds '{name}', which is neither a file nor a folder (a device or a pipe). Remove it "
        "and upload again."
    )


def _check_count(count: int, limits: ArchiveLimits) -> None:
    if count > limits.max_files:
        raise DatasetError(
            f"The archive holds more than {limits.max_files:,} files, the most this server accepts. Upload "
            "fewer images (a sample of each class)."
        )


def is_image_name(name: str) -> bool:
    """Return True when a file name ends in an image suffix the app decodes (PNG, JPEG)."""
    return name.lower().endswith(runtime.IMAGE_SUFFIXES)


def ignored(parts: tuple[str, ...]) -> bool:
    """Return True for a member that is no one's data: hidden (a dot name) or an OS's own (``__MACOSX``,
    ``Thumbs.db``, ``desktop.ini``)."""
    return any(part.startswith(".") or part.lower() in _IGNORED_NAMES for part in parts)


def _wanted(parts: tuple[str, ...]) -> bool:
    return bool(parts) and not ignored(parts) and is_image_name(parts[-1])


def _check_zip_directory(path: Path, limits: ArchiveLimits) -> None:
    """Count a zip's entries before ``zipfile.ZipFile`` parses them all into memory.

    ``ZipFile()`` reads the whole central directory and makes an object per entry before anyone can
    look at ``infolist()``: a small upload with a million tiny entries costs hundreds of MB. This reads
    the end record (through the very function ``ZipFile`` uses, so both see the same directory), refuses
    a declared count over the limit, then walks the directory's fixed-size entry headers, stopping at
    the first entry over the limit (the end record's count can lie; ``ZipFile`` goes by the size).
    """
    with open(path, "rb") as handle:
        end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # what ZipFile() itself calls
        if end is None:
            raise zipfile.BadZipFile("no end of central directory record")
        _check_count(end[zipfile._ECD_ENTRIES_TOTAL], limits)  # type: ignore[attr-defined]
        size = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
        start = end[zipfile._ECD_LOCATION] - size  # type: ignore[attr-defined]
        if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
        if start < 0:
            raise zipfile.BadZipFile("bad central directory offset")
        handle.seek(start)
        fixed, walked, count = zipfile.sizeCentralDir, 0, 0  # type: ignore[attr-defined]
        while walked < size:
            count += 1
            _check_count(count, limits)
            header = handle.read(fixed)
            if len(header) != fixed or header[:4] != zipfile.stringCentralDir:  # type: ignore[attr-defined]
                raise zipfile.BadZipFile("bad central directory entry")
            variable = sum(struct.unpack("<3H", header[28:34]))  # name, extra field and comment lengths
            if variable > MAX_ZIP_ENTRY_EXTRA:
                raise DatasetError(
                    f"The archive's entry {count} has a name or extra data of {variable:,} bytes, far more than "
                    "a file needs. Zip the class folders again with a standard tool and upload the new file."
                )
            handle.seek(variable, os.SEEK_CUR)
            walked += fixed + variable


def _zip_entries(path: Path, limits: ArchiveLimits) -> list[Entry]:
    _check_zip_directory(path, limits)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        _check_count(len(infos), limits)
        checked = []
        declared = _Budget(limits)  # the headers' word first: refuses most bombs before any byte is inflated
        for info in infos:  # every member is checked before any is read
            parts = _parts(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise _refuse_link(info.filename)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise _refuse_special(info.filename)
            if info.flag_bits & 0x1:
                raise DatasetError(
                    f"'{info.filename}' is password-protected; zip the images without a password and upload again."
                )
            if not info.is_dir():
                declared.add(info.filename, info.file_size, info.compress_size)
            checked.append((info, parts))
        budget = _Budget(limits)
        entries = []
        for info, parts in checked:
            data = None
            if not info.is_dir() and _wanted(parts):
                with archive.open(info) as handle:
                    data = handle.read(limits.max_file_bytes + 1)
                budget.add(info.filename, len(data), info.compress_size)
            entries.append(Entry(info.filename, parts, info.is_dir(), data))
    return entries


# A tar is read by the small reader below, not by ``tarfile``: ``tarfile`` reads a GNU long name or a
# pax header whole into memory before the caller sees the member (a 199 KB .tar.gz holding a 200 MB
# long name cost the web process 616 MB), parses pax headers with a regular expression that
# backtracks (CVE-2024-6232: quadratic time, 4 s for one 64 KB header on Python 3.11.7), and follows
# GNU sparse maps of any length. This reader accepts the headers real archives use (ustar, GNU long
# names, pax), each at most MAX_TAR_HEADER_BYTES, parses pax records in one linear pass, refuses
# sparse files, and streams the rest; its cost does not depend on the Python patch level.
_TAR_BLOCK = 512
_TAR_FILE_TYPES = frozenset(b"0\x007")  # regular (and "contiguous") files
_TAR_LONG_NAME, _TAR_LONG_LINK = ord("L"), ord("K")
_TAR_PAX_TYPES = frozenset(b"xgX")  # a member's pax attributes, global ones, Solaris's
_TAR_MAX_EXTENDED = 8  # extended headers in a row before one member
_PAX_DIGITS = 20  # digits of a pax record's length or of a number in it


class _CappedStream:
    """A decompressed stream that refuses to give more than ``cap`` bytes, headers and padding included
    (the members' own sizes are checked against the limits as well, by ``_Budget``)."""

    def __init__(self, stream, cap: int):
        self.stream, self.cap, self.read_bytes = stream, cap, 0

    def read(self, size: int) -> bytes:
        data = self.stream.read(min(size, self.cap + 1 - self.read_bytes))
        self.read_bytes += len(data)
        if self.read_bytes > self.cap:
            raise DatasetError(
                f"The archive expands to more than {self.cap / _MB:,.0f} MB, the most this server accepts. "
                "Upload fewer or smaller images."
            )
        return data

    def exactly(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = self.read(min(left, 1 << 16))
            if not chunk:
                raise EOFError("the archive is cut short")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def skip(self, size: int) -> None:
        while size:
            chunk = self.read(min(size, 1 << 16))
            if not chunk:
                raise EOFError("the archive is cut short")
            size -= len(chunk)


def _decompressed(raw: BinaryIO) -> BinaryIO:
    """The tar inside a .tar.gz (or .tar.bz2, .tar.xz, or a plain tar), decompressed as it is read."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if magic.startswith(b"BZh"):
        return cast(BinaryIO, bz2.BZ2File(raw))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, lzma.LZMAFile(raw))
    return raw


def _tar_number(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):  # GNU base-256, for sizes over 8 GB (negative: nonsense)
        if field[:1] == b"\xff":
            raise tarfile.TarError("negative number")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    if not text.isdigit() or b"8" in text or b"9" in text:
        raise tarfile.TarError("bad number")
    return int(text, 8)


def _tar_text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _refuse_tar_header(kind: str, size: int) -> DatasetError:
    return DatasetError(
        f"The archive holds a {kind} of {size / 1024:,.0f} KB; at most {MAX_TAR_HEADER_BYTES >> 10} KB is "
        "accepted (a path is far shorter). Pack the class folders again with zip (or tar without extended "
        "attributes, e.g. tar --no-xattrs) and upload the new file."
    )


def _pax_records(data: bytes) -> dict[str, str]:
    """Parse pax records (``"<length> <key>=<value>\\n"``) in one pass, refusing malformed ones."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding some writers leave
            break
        space = data.find(b" ", pos, pos + _PAX_DIGITS + 1)
        digits = data[pos:space]
        if space < 0 or not digits.isdigit():
            raise tarfile.TarError("bad pax record length")
        end = pos + int(digits)
        record = data[space + 1 : end]
        equals = record.find(b"=")
        if end > len(data) or end <= space + 1 or not record.endswith(b"\n") or equals <= 0:
            raise tarfile.TarError("bad pax record")
        key = record[:equals].decode("utf-8", "surrogateescape")
        records[key] = record[equals + 1 : -1].decode("utf-8", "surrogateescape")
        pos = end
    return records


def _tar_members(stream: _CappedStream):
    """Yield ``(name, type, size)`` of each member of a tar stream, after which the caller reads or
    skips exactly ``size`` bytes (``_tar_entries`` does: then the padding is skipped here)."""
    long_name: str | None = None
    pax: dict[str, str] = {}
    extended, first = 0, True
    while True:
        header = stream.read(_TAR_BLOCK)
        if len(header) < _TAR_BLOCK or header == bytes(_TAR_BLOCK):
            if first:
                raise tarfile.TarError("empty archive")
            return  # the end (a zero block), or an archive whose end blocks are missing, as tarfile reads it
        first = False
        stored = _tar_number(header[148:156])
        unsigned = sum(header[:148]) + 8 * ord(" ") + sum(header[156:])  # the checksum field counts as spaces
        signed = unsigned - 256 * sum(b > 127 for b in header[:148] + header[156:])  # old tars summed signed bytes
        if stored not in (unsigned, signed):
            raise tarfile.TarError("bad header checksum")
        kind, size = header[156], _tar_number(header[124:136])
        padding = -size % _TAR_BLOCK
        if kind in (_TAR_LONG_NAME, _TAR_LONG_LINK) or kind in _TAR_PAX_TYPES:
            what = "long file name" if kind in (_TAR_LONG_NAME, _TAR_LONG_LINK) else "pax header"
            extended += 1
            if size > MAX_TAR_HEADER_BYTES:
                raise _refuse_tar_header(what, size)
            if extended > _TAR_MAX_EXTENDED:
                raise tarfile.TarError("too many extended headers in a row")
            data = stream.exactly(size + padding)[:size]
            if kind == _TAR_LONG_NAME:
                long_name = _tar_text(data)
            elif kind != _TAR_LONG_LINK:
                records = _pax_records(data)
                if any(key.startswith("GNU.sparse") for key in records):
                    raise DatasetError(_SPARSE)
                if kind != ord("g"):  # global attributes (a comment, a charset) are not applied
                    pax.update(records)
            continue
        if kind == ord("S"):
            raise DatasetError(_SPARSE)
        name = _tar_text(header[:100])
        prefix = _tar_text(header[345:500]) if header[257:263] == b"ustar\x00" else ""
        if prefix:
            name = f"{prefix}/{name}"
        if long_name is not None:
            name = long_name
        if "path" in pax:
            name = pax["path"]
        if "size" in pax:
            digits = pax["size"]
            if not (digits.isascii() and digits.isdigit() and len(digits) <= _PAX_DIGITS):
                raise tarfile.TarError("bad pax size")
            size = int(digits)
            padding = -size % _TAR_BLOCK
        if kind in (0, ord("0")) and name.endswith("/"):  # an old-style folder: a file named with a slash
            kind = ord("5")
        if kind in (ord("1"), ord("2"), ord("3"), ord("4"), ord("6")):
            size = padding = 0  # links, devices and pipes store no data (whatever the header says)
        yield name.rstrip("/") if kind == ord("5") else name, kind, size
        stream.skip(padding)
        long_name, pax, extended = None, {}, 0


_SPARSE = (
    "The archive holds a sparse file (a GNU tar feature for disk images), which is refused. Pack the class "
    "folders again with zip, or with tar without --sparse, and upload the new file."
)


def _tar_entries(path: Path, limits: ArchiveLimits) -> list[Entry]:
    # A .tar.gz is compressed as one stream, so the ratio is checked for the archive as a whole; the
    # sizes in the headers bound how much is decompressed to skip from one member to the next.
    compressed = path.stat().st_size
    declared = _Budget(limits)
    budget = _Budget(limits)
    entries = []
    # Headers and padding: at most a few blocks per member, on top of the members' own bytes.
    cap = limits.max_total_bytes + (limits.max_files + 2) * 4 * _TAR_BLOCK
    with open(path, "rb") as raw, _decompressed(raw) as decompressed:
        stream = _CappedStream(decompressed, cap)
        for count, (name, kind, size) in enumerate(_tar_members(stream), start=1):
            _check_count(count, limits)
            parts = _parts(name)
            if kind in (ord("1"), ord("2")):
                raise _refuse_link(name)
            is_dir, is_file = kind == ord("5"), kind in _TAR_FILE_TYPES
            if not (is_file or is_dir):
                raise _refuse_special(name)
            declared.add(name, size, None)
            if declared.total > RATIO_MIN_BYTES and declared.total > limits.max_ratio * max(compressed, 1):
                raise _bomb_error("The archive", declared.total / max(compressed, 1), limits)
            data = None
            if is_file and _wanted(parts):
                data = stream.exactly(size)
                budget.add(name, len(data), None)
            else:
                stream.skip(size)
            entries.append(Entry(name, parts, is_dir, data))
    return entries


def read_archive(path: Path, filename: str, limits: ArchiveLimits) -> list[Entry]:
    """Read an uploaded zip, or tar (``filename`` tells which), within ``limits``.

    Returns:
        Every member in archive order; an image file's entry holds its bytes.

    Raises:
        DatasetError: The archive is missing, unreadable or unsafe, or breaks a limit; nothing of it
            is returned.
    """
    is_zip = filename.lower().endswith(".zip")
    kind = "zip" if is_zip else ".tar.gz"
    try:
        return _zip_entries(path, limits) if is_zip else _tar_entries(path, limits)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DatasetError(f"The file '{filename}' was not found.") from None
        raise DatasetError(
            f"'{filename}' is not a readable {kind} archive (it may be damaged or cut short). Pack the class "
            "folders again and upload the new file."
        ) from None
    except NotImplementedError:
        raise DatasetError(
            f"'{filename}' uses a compression method this server cannot read; zip it again with the standard "
            "'deflate' method (the default of most tools)."
        ) from None


def check_npz_archive(path: Path, filename: str, limits: ArchiveLimits) -> None:
    """Check an uploaded .npz, which is a zip, against ``limits`` before numpy reads it: the same bomb
    checks as an archive's, except that one member (the ``x`` array) may hold ``max_total_bytes``.

    Raises:
        DatasetError: The file is missing, is not a readable zip, or breaks a limit.
    """
    try:
        _check_zip_directory(path, limits)
        with zipfile.ZipFile(path) as container:  # an .npz is a zip: the same bomb checks apply
            infos = container.infolist()
    except FileNotFoundError:
        raise DatasetError(f"The file '{filename}' was not found.") from None
    except zipfile.BadZipFile:
        raise DatasetError(f"'{filename}' is not a readable .npz file (it may be damaged or cut short).") from None
    _check_count(len(infos), limits)
    budget = _Budget(ArchiveLimits(**{**limits.to_dict(), "max_file_bytes": limits.max_total_bytes}))
    for info in infos:
        budget.add(info.filename, info.file_size, info.compress_size)
