"""Unzipping a model bundle that may come from anyone (``nas_engine predict``), within limits.

``ZipFile.extractall`` trusts the archive: any number of members, any size (a zip bomb fills the
disk), and it is easy to get names wrong. This reads the end record before ``ZipFile`` parses the
central directory, then writes only plain files under the destination: no absolute names, drive
letters or ``..``, no links or devices, no encrypted members, each byte counted against the limits
as it is inflated (the sizes in the headers can lie), each file created new (``O_EXCL``) and private.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nas_engine.errors import NasError

_MB = 1024 * 1024
_CHUNK = _MB
# A central directory entry is 46 bytes plus its name, extra field and comment: a bundle's names are
# short, so a directory larger than this per member is not a bundle (and ZipFile would parse it whole).
_DIRECTORY_BYTES_PER_MEMBER = 1024


@dataclass(frozen=True)
class BundleLimits:
    """Upper bounds a bundle must respect while it is unzipped. A bundle holds seven files; its
    weights are stored twice (ONNX and TorchScript), so the total allows a large model twice."""

    max_members: int = 64
    max_total_bytes: int = 2048 * _MB  # inflated bytes, all members together, counted while writing


DEFAULT_BUNDLE_LIMITS = BundleLimits()


def _refuse(bundle: Path, why: str) -> NasError:
    return NasError(f"'{bundle}' is not a model bundle this command will open: {why}")


def _check_directory(bundle: Path, limits: BundleLimits) -> None:
    """Refuse a zip whose end record declares too many members, or a central directory too large
    for them, before ``ZipFile`` reads and parses that directory into objects."""
    with open(bundle, "rb") as handle:
        end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # what ZipFile() itself calls
    if end is None:
        raise zipfile.BadZipFile("no end of central directory record")
    if end[zipfile._ECD_ENTRIES_TOTAL] > limits.max_members:  # type: ignore[attr-defined]
        raise _refuse(bundle, f"it holds more than {limits.max_members} files.")
    if end[zipfile._ECD_SIZE] > limits.max_members * _DIRECTORY_BYTES_PER_MEMBER:  # type: ignore[attr-defined]
        raise _refuse(bundle, "its list of files is far larger than a bundle's.")


def _member_parts(bundle: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename
    parts = tuple(part for part in re.split(r"[\\/]", name) if part not in ("", "."))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or "\x00" in name:
        raise _refuse(bundle, f"'{name}' points outside the bundle (an absolute path, a drive letter or '..').")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise _refuse(bundle, f"'{name}' is a link.")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _refuse(bundle, f"'{name}' is neither a file nor a folder.")
    if info.flag_bits & 0x1:
        raise _refuse(bundle, f"'{name}' is encrypted.")
    if not parts and not info.is_dir():
        raise _refuse(bundle, f"a member has no name ('{name}').")
    return parts


def extract_bundle(bundle: str | Path, destination: str | Path, limits: BundleLimits = DEFAULT_BUNDLE_LIMITS) -> None:
    """Unzip ``bundle`` into the (empty) folder ``destination`` within ``limits``.

    Raises:
        NasError: the bundle breaks a limit or holds an unsafe member; what was written so far stays
            in ``destination`` (the caller's temporary folder).
        zipfile.BadZipFile: it is not a zip file.
    """
    bundle, destination = Path(bundle), Path(destination)
    _check_directory(bundle, limits)
    total = 0
    with zipfile.ZipFile(bundle) as archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise _refuse(bundle, f"it holds more than {limits.max_members} files.")
        members = [(info, _member_parts(bundle, info)) for info in infos]  # every name checked before any write
        if sum(info.file_size for info in infos) > limits.max_total_bytes:
            raise _refuse(bundle, f"it expands to more than {limits.max_total_bytes / _MB:g} MB.")
        for info, parts in members:
            if info.is_dir() or not parts:
                continue
            target = destination.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except FileExistsError:
                raise _refuse(bundle, f"it holds '{info.filename}' twice.") from None
            with archive.open(info) as source, os.fdopen(descriptor, "wb") as out:
                while chunk := source.read(_CHUNK):
                    total += len(chunk)
                    if total > limits.max_total_bytes:
                        raise _refuse(bundle, f"it expands to more than {limits.max_total_bytes / _MB:g} MB.")
                    out.write(chunk)
