"""Image uploads are converted in a forked child whose address space is capped (RLIMIT_AS), so an
archive that needs more memory than it should (a decompression bomb the engine's limits missed, a
huge image) fails that child with a clear message instead of growing the web process.

A fork, not a new interpreter: the child already has the engine imported (a fresh ``python -m``
would spend two seconds importing torch per upload), and it touches neither the database nor the
event loop: it converts, writes its answer to a pipe as JSON, and leaves with ``os._exit``.
"""

from __future__ import annotations

import json
import logging
import os
import resource
from pathlib import Path

import nas_engine

logger = logging.getLogger(__name__)
_CRASHED = 70  # the child's exit code when it could not even report (out of memory while answering)


def out_of_memory(memory_mb: int) -> nas_engine.DatasetError:
    return nas_engine.DatasetError(
        f"Converting these images needed more memory than this server allows for one upload ({memory_mb:,} MB). "
        "Upload fewer or smaller images (a sample of each class)."
    )


def convert_image_upload_isolated(
    source: Path,
    destination: Path,
    *,
    filename: str,
    limits: nas_engine.ArchiveLimits,
    size: int | None,
    memory_mb: int,
    gpu: bool = False,
) -> dict:
    """``nas_engine.convert_image_upload`` in a child allowed ``memory_mb`` MB more address space than
    this process has now; returns the image set's profile as a dict (``ImageSetProfile.to_dict()``).

    With ``memory_mb=0``, or where there is no fork (Windows), it converts in this process.

    Raises:
        nas_engine.DatasetError: the engine's refusal, or the child ran out of memory (or died).
    """
    if memory_mb <= 0 or not hasattr(os, "fork"):
        return nas_engine.convert_image_upload(
            source, destination, filename=filename, limits=limits, size=size, gpu=gpu
        ).to_dict()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage does not follow a fork that never returns
        os.close(read_end)
        code = 0
        try:
            _cap_address_space(memory_mb)
            try:
                profile = nas_engine.convert_image_upload(
                    source, destination, filename=filename, limits=limits, size=size, gpu=gpu
                )
                answer = {"profile": profile.to_dict()}
            except nas_engine.DatasetError as exc:
                answer = {"error": str(exc)}
            except MemoryError:
                answer = {"memory": True}
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(json.dumps(answer).encode())
        except BaseException:
            code = _CRASHED
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    answer = _parse(raw) if os.waitstatus_to_exitcode(status) == 0 else None
    if answer is None or answer.get("memory"):
        logger.warning("Converting %s failed in its child (exit status %s)", filename, status)
        raise out_of_memory(memory_mb)
    if "error" in answer:
        raise nas_engine.DatasetError(answer["error"])
    return answer["profile"]


def _cap_address_space(memory_mb: int) -> None:
    """Allow this process ``memory_mb`` MB of address space on top of what it maps now (a fork of a
    process with torch loaded already maps gigabytes it will never touch)."""
    try:
        with open("/proc/self/statm") as handle:
            mapped = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no /proc (macOS, where RLIMIT_AS is not enforced anyway): no cap
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + memory_mb * 2**20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _parse(raw: bytes) -> dict | None:
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
