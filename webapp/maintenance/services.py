"""Retention: find and delete the files under MEDIA_ROOT that nothing needs any more.

Garbage is: dataset files no Dataset row points to, the folders of deleted searches, exported
bundles and prepared downloads older than RETENTION_DAYS (re-created on demand) and temporary
files of interrupted exports and downloads. Trial weights of existing searches are never touched.
Symbolic links are never followed: a link in a garbage place is removed itself, and its target is left alone.
"""

from __future__ import annotations

import enum
import fnmatch
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from webapp.datasets.models import Dataset
from webapp.searches.models import SearchJob

logger = logging.getLogger(__name__)

# An upload is copied into place before its row is committed, and an export writes its
# temporary file before renaming it: younger files may still be in use.
UPLOAD_GRACE = timedelta(hours=1)
EXPORT_GRACE = timedelta(hours=1)
EXPORT_TEMP_PATTERNS = (
    "tmp*.zip",  # tempfile.mkstemp(suffix=".zip") in searches.bundles.trial_bundle
    ".part-*",  # the temporary name searches.downloads writes a file under before renaming it
)


class Reason(enum.StrEnum):
    ORPHAN_DATASET_FILE = "no dataset uses this file"
    DELETED_SEARCH = "its search was deleted"
    OLD_BUNDLE = "bundle older than the retention period"
    OLD_DOWNLOAD = "prepared download older than the retention period"
    INTERRUPTED_EXPORT = "left over from an interrupted export"


@dataclass(frozen=True)
class PurgedPath:
    """One file or folder that was (or, in a dry run, would be) deleted."""

    path: str  # relative to MEDIA_ROOT, with forward slashes
    reason: Reason
    size_bytes: int

    def to_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason.value, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class PurgeFailure:
    path: str
    error: str

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error}


@dataclass(frozen=True)
class PurgeReport:
    dry_run: bool
    purged: tuple[PurgedPath, ...]
    failed: tuple[PurgeFailure, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(item.path for item in self.purged)

    @property
    def bytes_freed(self) -> int:
        """Bytes freed, or that would be freed in a dry run."""
        return sum(item.size_bytes for item in self.purged)

    def to_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "purged": [item.to_dict() for item in self.purged],
            "bytes_freed": self.bytes_freed,
            "failed": [failure.to_dict() for failure in self.failed],
        }


def files_purge(*, dry_run: bool, now: datetime | None = None) -> PurgeReport:
    """Delete (or, with dry_run, only list) the files under MEDIA_ROOT that nothing needs.

    Args:
        dry_run: list what would be deleted and delete nothing.
        now: the time file ages are measured from; the current time when None.

    Returns:
        What was deleted (or would be), and what could not be deleted and why.
    """
    root = Path(os.path.abspath(settings.MEDIA_ROOT))
    now_ts = (now or timezone.now()).timestamp()
    garbage = [*_orphan_dataset_files(root, now_ts), *_search_garbage(root, now_ts)]
    if dry_run:
        return PurgeReport(dry_run=True, purged=tuple(garbage))
    purged, failed = [], []
    for item in garbage:
        try:
            _remove(root / item.path)
        except FileNotFoundError:
            continue  # removed meanwhile by someone else: not ours to count
        except OSError as exc:
            logger.error("Could not delete %s: %s", item.path, exc)
            failed.append(PurgeFailure(path=item.path, error=str(exc)))
        else:
            logger.info("Deleted %s (%s, %d bytes)", item.path, item.reason, item.size_bytes)
            purged.append(item)
    return PurgeReport(dry_run=False, purged=tuple(purged), failed=tuple(failed))


def _orphan_dataset_files(root: Path, now_ts: float) -> list[PurgedPath]:
    """Files in datasets/<user id>/ that no Dataset row points to, older than UPLOAD_GRACE."""
    files = [
        entry
        for user_dir in _entries(root / "datasets")
        if _numeric_name(user_dir.name) is not None and user_dir.is_dir(follow_symlinks=False)
        for entry in _entries(Path(user_dir.path))
        if _is_leaf(entry)
    ]
    # Rows are read after the listing: a file listed above was on disk before this query.
    used = {os.path.normpath(root / name) for name in Dataset.objects.values_list("file", flat=True)}
    cutoff = now_ts - UPLOAD_GRACE.total_seconds()
    garbage = []
    for entry in files:
        info = entry.stat(follow_symlinks=False)
        if os.path.normpath(entry.path) not in used and info.st_mtime < cutoff:
            garbage.append(PurgedPath(_relative(root, entry.path), Reason.ORPHAN_DATASET_FILE, _size(info)))
    return garbage


def _search_garbage(root: Path, now_ts: float) -> list[PurgedPath]:
    """Folders of deleted searches, and old bundles and downloads and export leftovers of existing ones."""
    job_dirs = sorted(
        ((job_id, entry) for entry in _entries(root / "jobs") if (job_id := _numeric_name(entry.name)) is not None),
        key=lambda pair: pair[0],
    )
    # Read after the listing: a search's folder is made only after its row is committed,
    # so a folder listed above without a row here belongs to a deleted search.
    existing = set(SearchJob.objects.values_list("pk", flat=True))
    bundle_cutoff = now_ts - timedelta(days=settings.RETENTION_DAYS).total_seconds()
    export_cutoff = now_ts - EXPORT_GRACE.total_seconds()
    garbage = []
    for job_id, entry in job_dirs:
        if job_id not in existing:
            garbage.append(PurgedPath(_relative(root, entry.path), Reason.DELETED_SEARCH, _tree_size(entry)))
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        for folder, suffix, reason in (("bundles", ".zip", Reason.OLD_BUNDLE), ("downloads", "", Reason.OLD_DOWNLOAD)):
            for file in _entries(Path(entry.path) / folder):
                if not (_is_leaf(file) and file.name.endswith(suffix)):
                    continue
                info = file.stat(follow_symlinks=False)
                if any(fnmatch.fnmatchcase(file.name, pattern) for pattern in EXPORT_TEMP_PATTERNS):
                    if info.st_mtime < export_cutoff:
                        garbage.append(PurgedPath(_relative(root, file.path), Reason.INTERRUPTED_EXPORT, _size(info)))
                elif info.st_mtime < bundle_cutoff:
                    garbage.append(PurgedPath(_relative(root, file.path), reason, _size(info)))
    return garbage


def _entries(folder: Path) -> list[os.DirEntry]:
    """The entries of a real folder, by name; none when it is missing or is a link to a folder."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return []
        with os.scandir(folder) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []


def _numeric_name(name: str) -> int | None:
    """The id a folder is named after (`str(pk)`), or None for any other name."""
    if name.isascii() and name.isdigit() and name == str(int(name)):
        return int(name)
    return None


def _is_leaf(entry: os.DirEntry) -> bool:
    """A regular file or a symbolic link (to anything); never a folder, socket or device."""
    return entry.is_symlink() or entry.is_file(follow_symlinks=False)


def _size(info: os.stat_result) -> int:
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _tree_size(entry: os.DirEntry) -> int:
    """Bytes in the regular files of a folder, not counting what its links point to."""
    if not entry.is_dir(follow_symlinks=False):
        return _size(entry.stat(follow_symlinks=False))
    total = 0
    for folder, _, names in os.walk(entry.path):  # os.walk does not descend into links
        total += sum(_size(os.lstat(os.path.join(folder, name))) for name in names)
    return total


def _relative(root: Path, path: str) -> str:
    return Path(path).relative_to(root).as_posix()


def _remove(path: Path) -> None:
    """Delete a file, a link (not its target) or a whole folder (whose links are unlinked, not followed)."""
    if stat.S_ISDIR(os.lstat(path).st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()
