"""Atomic file writes, shared by the data files and the training outputs."""

import contextlib
import glob
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to `path`, moved into place when the block succeeds.

    The block writes the whole file to the yielded path; on success it is renamed to `path`
    with `os.replace`, so readers see the old file or the new one, never a partial one. On an
    exception it is removed. The file is created with mode `0o666` less the process's umask
    (`0o644` by default), as `open` would create `path` itself, so that other users who share
    the folder can read it. The temporary name ends in `.tmp`.

    **Arguments:**

    - `path`: the file to write; its folder is created if needed.

    **Returns:** a context manager yielding the temporary `Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """The temporary files `atomic_write(path)` left behind when a writer was killed."""
    path = Path(path)
    return sorted(path.parent.glob(f"{glob.escape(path.name)}.*.tmp"))
