"""Convert an uploaded image archive (one folder per class) or an .npz of arrays, once, into a stored
image set: an .npz of uint8 pixels that the tabular pipeline reads as pixel columns plus a label."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import re
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pandas as pd

from nas_engine import runtime
from nas_engine.errors import DatasetError

TARGET = "label"
FORMAT = "nas-image-set"
VERSION = 1
RESAMPLE = "bilinear"
# Images are stored at most 32×32 (not 64) because searches train on a CPU with two cores; a larger
# side only slows every trial. ``size`` asks for another side, up to MAX_CHOSEN_SIDE.
MIN_SIDE, MAX_SIDE, MAX_CHOSEN_SIDE = 8, 32, 64
MAX_SKIPPED_LISTED = 50
SAMPLES_PER_CLASS = 6
# A high ratio is only dangerous when the member is large; a 4 KB run of zeros is no bomb.
RATIO_MIN_BYTES = 1 << 20
MAX_META_BYTES = 1 << 20
# A tar's extended headers (a GNU long name, pax attributes) are read whole before the member they
# describe: a 50 MB long name must not become 50 MB of memory. A real one is a path (at most 4 KB on
# Linux) and a few attributes; 64 KB leaves room for a Mac's extended attributes.
MAX_TAR_HEADER_BYTES = 64 << 10
# A zip's central directory entry: its fixed part and at most this much name, extra field and comment.
MAX_ZIP_ENTRY_EXTRA = 4096
_IGNORED_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})
_UPLOAD_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".npz")
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
class ImageSetProfile:
    """What a converted upload holds.

    ``classes`` pairs each class name with its images kept, sorted by name (numbers by value);
    ``height``/``width``/``channels`` are the stored size (square) and 1 (grey) or 3 (RGB);
    ``source_sizes`` gives the ``[width, height]`` min, median and max of the decoded originals;
    ``skipped`` lists up to 50 ``(member name, reason)`` of files that could not be decoded;
    ``samples`` maps each class to up to 6 ``data:image/png;base64,...`` URLs at the stored size.
    """

    classes: tuple[tuple[str, int], ...]
    images: int
    height: int
    width: int
    channels: int
    source_sizes: dict
    skipped: tuple[tuple[str, str], ...] = ()
    skipped_count: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "classes": [list(pair) for pair in self.classes],
            "images": self.images,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "source_sizes": {key: list(value) for key, value in self.source_sizes.items()},
            "skipped": [list(pair) for pair in self.skipped],
            "skipped_count": self.skipped_count,
            "samples": {name: list(urls) for name, urls in self.samples.items()},
        }


@dataclass(frozen=True)
class _Entry:
    """One member of an archive: its name as stored (for messages), its path parts, and its bytes
    when it is an image file to decode."""

    name: str
    parts: tuple[str, ...]
    is_dir: bool
    data: bytes | None = None


@dataclass(frozen=True)
class _Decoded:
    label: str
    name: str
    data: bytes | None  # the file's bytes (archives) ...
    array: np.ndarray | None  # ... or its H×W×C uint8 pixels (.npz)
    size: tuple[int, int]  # (width, height) of the original


def is_image_upload(filename: str) -> bool:
    """Return True when an upload's name says it holds images (.zip, .tar.gz, .tgz or .npz)."""
    return filename.lower().endswith(_UPLOAD_SUFFIXES)


# --- reading archives safely ---------------------------------------------------------------------


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


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(runtime.IMAGE_SUFFIXES)


def _ignored(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") or part.lower() in _IGNORED_NAMES for part in parts)


def _wanted(parts: tuple[str, ...]) -> bool:
    return bool(parts) and not _ignored(parts) and _is_image_name(parts[-1])


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


def _zip_entries(path: Path, limits: ArchiveLimits) -> list[_Entry]:
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
            entries.append(_Entry(info.filename, parts, info.is_dir(), data))
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


def _tar_entries(path: Path, limits: ArchiveLimits) -> list[_Entry]:
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
            entries.append(_Entry(name, parts, is_dir, data))
    return entries


def _read_archive(path: Path, filename: str, limits: ArchiveLimits) -> list[_Entry]:
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


# --- layout: one folder per class ----------------------------------------------------------------


def _classes(entries: list[_Entry]) -> dict[str, list[_Entry]]:
    """Group the image files by class folder, descending into a single parent folder."""
    visible = [e for e in entries if e.parts and not _ignored(e.parts)]
    images = [e for e in visible if not e.is_dir and _is_image_name(e.parts[-1])]
    if not images:
        raise DatasetError(
            "The archive holds no PNG or JPEG images. Put the images in one folder per class (for example "
            "cats/001.png and dogs/001.png), pack the folders and upload the file."
        )
    depth = 0  # people often zip the folder that holds the class folders
    while all(len(e.parts) >= depth + 3 for e in images) and len({e.parts[depth] for e in images}) == 1:
        depth += 1
    prefix = images[0].parts[:depth]
    loose = [e for e in images if len(e.parts) == depth + 1]
    if loose:
        raise DatasetError(
            f"'{loose[0].name}' sits at the top of the archive, outside any class folder. Put every image in a "
            "folder named after its class (for example cats/001.png) and upload again."
        )
    folders = {
        e.parts[depth].strip()
        for e in visible
        if e.parts[:depth] == prefix and (len(e.parts) > depth + 1 or (e.is_dir and len(e.parts) == depth + 1))
    }
    grouped: dict[str, list[_Entry]] = {name: [] for name in folders}
    for entry in images:
        grouped[entry.parts[depth].strip()].append(entry)
    for name, members in sorted(grouped.items()):
        _check_label(name, "class folder")
        if not members:
            raise DatasetError(
                f"Class folder '{name}' holds no images (PNG or JPEG). Add images to it or remove it, then "
                "upload again."
            )
    if len(grouped) < 2:
        raise DatasetError(
            f"The archive has only one class folder ('{next(iter(grouped))}'); a model needs at least two. Put "
            "each class's images in a folder of its own."
        )
    return {name: sorted(members, key=lambda e: e.name) for name, members in grouped.items()}


def _check_label(label: str, what: str) -> None:
    if runtime.is_missing(label):
        shown = f"'{label}'" if label else "with an empty name"
        raise DatasetError(
            f"The {what} {shown} reads as a missing value, so its images would be dropped; rename it (for "
            "example 'unknown')."
        )


# --- decoding ------------------------------------------------------------------------------------


def _decode_archive(
    grouped: dict[str, list[_Entry]], limits: ArchiveLimits
) -> tuple[list[_Decoded], list[tuple[str, str]], bool]:
    """Open every image once for its size and colour; returns (kept, skipped, all grey)."""
    kept: list[_Decoded] = []
    skipped: list[tuple[str, str]] = []
    grey = True
    for label in sorted(grouped, key=runtime.label_sort_key):
        for entry in grouped[label]:
            assert entry.data is not None  # read for every image file
            try:
                image = runtime.open_image(entry.data, max_side=limits.max_side)
                grey = grey and runtime.is_grey(image)
            except ValueError as exc:
                skipped.append((entry.name, str(exc)))
                continue
            kept.append(_Decoded(label, entry.name, entry.data, None, image.size))
    if not kept:
        example, reason = skipped[0]
        raise DatasetError(
            f"None of the {len(skipped)} images could be read (for example '{example}': {reason}). Check that the "
            "files are real PNG or JPEG images."
        )
    empty = sorted(set(grouped) - {item.label for item in kept})
    if empty:
        raise DatasetError(
            f"No image in class folder '{empty[0]}' could be read as PNG or JPEG; replace its files or remove "
            "the folder."
        )
    return kept, skipped, grey


def _npz_images(path: Path, filename: str, limits: ArchiveLimits) -> tuple[list[_Decoded], bool]:
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
    try:
        x, y = runtime.load_npz_images(path, name=filename)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if y is None:
        raise DatasetError(
            f"'{filename}' has no array named 'y'; save one label per image as y (np.savez(path, x=..., y=...))."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(
            f"y has shape {'×'.join(map(str, y.shape))}; it needs one label per image (a list as long as x)."
        )
    if len(y) != len(x):
        raise DatasetError(
            f"x holds {len(x):,} images but y holds {len(y):,} labels; they must match: one label per image."
        )
    if len(x) > limits.max_files:
        raise DatasetError(
            f"The file holds {len(x):,} images; this server accepts at most {limits.max_files:,}. Upload a sample."
        )
    labels = [_label_text(value) for value in y.tolist()]
    for label in sorted(set(labels)):
        _check_label(label, "label")
    grey = x.shape[-1] == 1 or bool((x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all())
    size = (int(x.shape[2]), int(x.shape[1]))
    order = sorted(range(len(x)), key=lambda i: runtime.label_sort_key(labels[i]))  # stable: rows keep order
    decoded = [_Decoded(labels[i], str(i), None, x[i], size) for i in order]
    if len({item.label for item in decoded}) < 2:
        raise DatasetError(f"Every image in y has the label '{labels[0]}'; a model needs at least two classes.")
    return decoded, grey


def _label_text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(int(value)) if isinstance(value, (bool, int)) else str(value).strip()


def _side(items: list[_Decoded], size: int | None) -> int:
    if size is not None:
        if not isinstance(size, int) or not MIN_SIDE <= size <= MAX_CHOSEN_SIDE:
            raise DatasetError(f"The image size must be between {MIN_SIDE} and {MAX_CHOSEN_SIDE} pixels; got {size}.")
        return size
    median = float(np.median([max(item.size) for item in items]))
    return int(min(max(round(median), MIN_SIDE), MAX_SIDE))


def _source_sizes(items: list[_Decoded]) -> dict:
    sizes = np.array([item.size for item in items])
    return {
        "min": sizes.min(axis=0).tolist(),
        "median": np.rint(np.median(sizes, axis=0)).astype(int).tolist(),
        "max": sizes.max(axis=0).tolist(),
    }


def png_data_url(pixels: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of stored pixels (C×H×W uint8)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def png_bytes(pixels: np.ndarray) -> bytes:
    """Stored pixels (C×H×W uint8) as a PNG file; decoding it gives the same pixels back."""
    from PIL import Image

    array = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_image_set(destination: Path, x: np.ndarray, labels: list[str], meta: dict) -> None:
    """Write the .npz under a temporary name in the same folder, then rename it into place."""
    handle = tempfile.NamedTemporaryFile(dir=destination.parent, prefix=f".{destination.name}.", delete=False)
    try:
        with handle:
            np.savez_compressed(
                handle,
                x=x,
                y=np.array(labels, dtype=str),
                meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
            )
        os.replace(handle.name, destination)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def convert_image_upload(
    source: str | Path,
    destination: str | Path,
    *,
    filename: str,
    limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS,
    size: int | None = None,
) -> ImageSetProfile:
    """Convert an uploaded image archive or .npz into a stored image set.

    An archive (.zip, .tar.gz, .tgz) holds one folder per class of PNG/JPEG files; an .npz holds
    ``x`` (N×H×W or N×H×W×C images, uint8 or decimals 0..1) and ``y`` (N labels). Images are
    stored grey when none has colour, else RGB, resized (bilinear) to a square side.

    Args:
        source: The uploaded file.
        destination: Where to write the image set (.npz); written whole or not at all.
        filename: The upload's original name, which tells its format.
        limits: Bounds on the archive's members, sizes and compression.
        size: The stored side in pixels; by default the median side of the images, within 8..32.

    Returns:
        What the image set holds.

    Raises:
        DatasetError: The upload cannot be used; the message says why and what to do. No file is
            left at ``destination``.
    """
    source, destination = Path(source), Path(destination)
    name = filename.lower()
    skipped: list[tuple[str, str]] = []
    if name.endswith(".npz"):
        items, grey = _npz_images(source, filename, limits)
    elif is_image_upload(name):
        items, skipped, grey = _decode_archive(_classes(_read_archive(source, filename, limits)), limits)
    else:
        raise DatasetError(f"'{filename}' is not an image upload; upload a .zip, .tar.gz, .tgz or .npz file.")
    side, channels = _side(items, size), 1 if grey else 3
    classes = sorted({item.label for item in items}, key=runtime.label_sort_key)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "height": side,
        "width": side,
        "channels": channels,
        "resample": RESAMPLE,
        "columns": [f"p{i}" for i in range(channels * side * side)],
        "classes": classes,
    }
    x = np.empty((len(items), channels, side, side), dtype=np.uint8)
    for i, item in enumerate(items):
        # The very functions a bundle's predict.py runs, so it reproduces these pixels exactly.
        if item.data is not None:
            x[i] = runtime.decode_image(item.data, meta)
        else:
            assert item.array is not None
            x[i] = runtime.array_pixels(item.array, meta)
    labels = [item.label for item in items]
    samples: dict[str, list[str]] = {label: [] for label in classes}
    for pixels, label in zip(x, labels, strict=True):
        if len(samples[label]) < SAMPLES_PER_CLASS:
            samples[label].append(png_data_url(pixels))
    _write_image_set(destination, x, labels, meta)
    return ImageSetProfile(
        classes=tuple((label, labels.count(label)) for label in classes),
        images=len(items),
        height=side,
        width=side,
        channels=channels,
        source_sizes=_source_sizes(items),
        skipped=tuple(skipped[:MAX_SKIPPED_LISTED]),
        skipped_count=len(skipped),
        samples=samples,
    )


# --- reading a stored image set ------------------------------------------------------------------


def read_image_meta(path: str | Path) -> dict | None:
    """Return the ``"image"`` meta stored in an image set, or None when ``path`` is not one.

    An image set is always named ``.npz``: a file named otherwise (an upload called ``data.csv``) is
    never read as one, so it cannot skip the archive limits an image upload is checked against.
    """
    if Path(path).suffix.lower() != ".npz":
        return None
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                return None
        with zipfile.ZipFile(path) as container:
            if container.getinfo("meta.npy").file_size > MAX_META_BYTES:
                return None
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def _stored_arrays(path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    damaged = DatasetError(f"The image set '{path.name}' is damaged (its pixels do not match its description).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz["x"], npz["y"]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise damaged from None
    shape = (meta["channels"], meta["height"], meta["width"])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != shape or y.shape != (len(x),) or y.dtype.kind != "U":
        raise damaged
    return x, y


def read_image_table(path: str | Path, *, max_rows: int | None = None) -> pd.DataFrame:
    """Read an image set as the table of raw text cells a CSV of it would give.

    Returns:
        The pixel columns (``p0``, ``p1``, ... in C×H×W order, cells ``str(int)``) then ``label``.

    Raises:
        DatasetError: ``path`` is not an intact image set.
    """
    path = Path(path)
    meta = read_image_meta(path)
    if meta is None:
        raise DatasetError(f"'{path.name}' is not an image set.")
    x, y = _stored_arrays(path, meta)
    if max_rows is not None:
        x, y = x[:max_rows], y[:max_rows]
    cells = np.array(runtime.PIXEL_CELLS, dtype=object)[x.reshape(len(x), -1)]
    table = np.concatenate([cells, y.astype(object).reshape(-1, 1)], axis=1)
    return pd.DataFrame(table, columns=[*meta["columns"], TARGET], dtype=str)
