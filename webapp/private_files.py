"""Files under var/ are the server's own: the session-signing key, the database, uploads and models.

Imported by settings (before Django is set up) and by ``webapp.stack``; no Django import here.

- ``PRIVATE_UMASK`` (077): what ``webapp.stack`` sets for itself and every process it starts, so
  what they create (database, uploads, models, logs, Redis files) is readable by its owner only.
- ``private_dir``: var/ and the media folder are made 0700 at start-up, which also covers processes
  not started by the stack (``manage.py``, the Docker containers), whatever their umask. (Settings
  does not change the process umask: the image's ``collectstatic`` runs as root before the app's
  user exists, and must leave files that user can read.)
- ``read_or_create_secret_key``: the key is written to a private temporary file, then linked to its
  name, which fails if another process got there first: the key never exists with a looser mode,
  never half-written, and two processes starting at once end up with the same key (the loser reads
  the winner's).
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

PRIVATE_UMASK = 0o077
_KEY_CHARS = string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)"  # Django's get_random_secret_key's


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if missing; take group and other access away from it if this
    process owns it. Returns ``path``."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        path.chmod(info.st_mode & 0o700)
    return path


def read_or_create_secret_key(path: Path) -> str:
    """The key stored at ``path``, created (50 random characters, mode 0600) when there is none.

    Raises:
        RuntimeError: the file exists but is empty.
    """
    if not path.exists():
        key = "".join(secrets.choice(_KEY_CHARS) for _ in range(50))
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(key)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)  # atomic, and refuses to replace a key another process made
            except FileExistsError:
                pass  # lost the race: the winner's key is complete, read it below
        finally:
            temporary.unlink(missing_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:  # made by an older version, before this module
        path.chmod(0o600)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it (a new key is made; everyone logs in again) or set SECRET_KEY.")
    return key
