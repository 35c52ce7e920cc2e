"""Writing files atomically and hashing them: the two file helpers every module shares.

:func:`atomic_write` writes to a temporary name in the target's directory, flushes and
fsyncs it, then renames it over the target (:func:`os.replace`, atomic on POSIX): a reader
sees the old file or the new one, never half of one, and a process killed mid-write leaves
no partial file behind. The file is created with mode ``0o666`` filtered by the umask, like
any file a program opens for writing, so a store shared by a group stays readable
(:func:`tempfile.mkstemp` would create ``0o600`` files).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> atomic_write(p, "hello")
>>> p.read_text(), sha256_file(p)[:12]
('hello', '2cf24dba5fb0')
"""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Callable, Union

__all__ = ["atomic_write", "sha256_file", "sha256_bytes"]

Writer = Callable[["object"], None]


def atomic_write(path: Union[str, Path], data: Union[str, bytes, Writer]) -> None:
    """Atomically replace ``path`` with ``data``: text, bytes, or a callable ``write(fh)``
    that writes to a binary file handle (e.g. ``lambda fh: torch.save(obj, fh)``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # the umask applies
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Union[str, Path]) -> str:
    """The SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
