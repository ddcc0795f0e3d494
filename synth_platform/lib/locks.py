"""One refresh of a table at a time, and temporary files that never collide.

**Locks.** Every step that writes a table's private state takes that table's *refresh lock*: an
``fcntl.flock`` on ``SYNTH_HOME/private/<table>/.refresh.lock`` (a group's steps also take
``private/_groups/<group>/.refresh.lock``, then the lock of each of its tables in name order).
Each Dagster step is a separate call, often in a separate process, so the lock is held *inside*
each step, not across a whole run:

- sampling (``<t>_synthetic``, a group's synthetic step) and publishing (``<t>_published``)
  hold it **exclusively**;
- a gate holds it **shared** while it reads the candidate and writes its verdict, so the three
  gates of one candidate still run in parallel, but never while a sampler replaces the
  candidate they read or a publisher copies it.

Two refreshes of the same table started together therefore never interleave writes: their steps
take turns, and whatever order the turns come in, a verdict is bound to the candidate bytes it
judged (the candidate id is the SHA-256 of the file) and the publisher re-hashes the file before
it publishes (:mod:`synth_platform.lib.lifecycle`).

**Wait, then fail.** A step that finds the lock taken waits for it, up to
``SYNTH_REFRESH_LOCK_TIMEOUT_S`` seconds (600 by default; ``0`` fails at once), then raises
:class:`RefreshInProgressError` naming the table and the process that holds it. Waiting suits a
scheduled refresh that overlaps a manual one (the second simply runs after the first); the bound
keeps a step from hanging behind a stuck run. ``flock`` locks belong to the open file, so the
kernel releases them when their process dies, even on SIGKILL: a killed run never leaves a lock
behind. Waiters queue on a turnstile (``.refresh.lock.queue``), so a sampler waiting behind the
gates of another refresh is not starved by them. The lock is re-entrant within a thread (a group step that holds its tables' locks calls
the per-table functions, which take them again); a shared holder cannot upgrade to exclusive.

**Temporary files** are named ``.<final name>.<pid>.<uuid>.tmp`` next to their target
(:func:`temp_path`), so two writers never share one, are removed when the write fails
(:func:`removed_on_error`), and those a killed process left behind are swept by the next
writer holding the table's lock (:func:`sweep_stale_temps`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from synth_platform.lib.errors import SynthPlatformError

LOCK_FILE = ".refresh.lock"
QUEUE_SUFFIX = ".queue"
TIMEOUT_ENV = "SYNTH_REFRESH_LOCK_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0

_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp$")


class RefreshInProgressError(SynthPlatformError):
    """Another process is refreshing the same table (or group) and did not finish in time."""


def lock_timeout() -> float:
    """Seconds a step waits for a refresh lock (``SYNTH_REFRESH_LOCK_TIMEOUT_S``, default 600)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw in (None, ""):
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise SynthPlatformError(
            f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to e.g. 600 (0: never wait)"
        ) from None
    return max(value, 0.0)


class _State:
    """This process's hold on one lock file (re-entrant per thread)."""

    def __init__(self) -> None:
        self.rlock = threading.RLock()
        self.fd: int | None = None
        self.shared = False
        self.depth = 0


_guard = threading.Lock()
_states: dict[str, _State] = {}


def _state(path: Path) -> _State:
    key = os.path.abspath(path)
    with _guard:
        return _states.setdefault(key, _State())


def _holder(path: Path) -> str:
    """Who holds the lock, as the holder wrote it (best effort)."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process"
    where = f"pid {info['pid']}"
    if info.get("host") and info["host"] != socket.gethostname():
        where += f" on {info['host']}"
    step = f"{info['step']}, " if info.get("step") else ""
    since = f"since {info['since']}" if info.get("since") else ""
    return f"{where} ({step}{since})" if step or since else where


def _busy(what: str, name: str, path: Path, timeout: float) -> RefreshInProgressError:
    waited = f"waited {timeout:g} s; " if timeout > 0 else ""
    return RefreshInProgressError(
        f"{what} '{name}' is already being refreshed by {_holder(path)}; {waited}wait for that "
        f"run to finish (or stop it) and retry. One refresh of a {what} runs at a time; "
        f"{TIMEOUT_ENV} sets how long a step waits for the other (lock file {path})."
    )


@contextmanager
def refresh_lock(
    directory: Path,
    *,
    what: str,
    name: str,
    step: str,
    shared: bool = False,
    timeout: float | None = None,
) -> Iterator[None]:
    """Hold the refresh lock of ``directory`` (a table's or a group's private folder).

    Args:
        what: ``"table"`` or ``"group"`` (for messages).
        name: The table or group name (for messages).
        step: What the holder does (``"sample"``, ``"fidelity gate"``, ...), shown to a waiter.
        shared: Take it shared (readers that write only their own verdict) instead of exclusive.
        timeout: Seconds to wait; default :func:`lock_timeout`.

    Raises:
        RefreshInProgressError: The lock stayed taken for ``timeout`` seconds.
    """
    timeout = lock_timeout() if timeout is None else max(float(timeout), 0.0)
    deadline = time.monotonic() + timeout
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    state = _state(path)
    # Another thread of this process holding it counts as another refresh, too.
    acquired = state.rlock.acquire(timeout=timeout) if timeout > 0 else state.rlock.acquire(False)
    if not acquired:
        raise _busy(what, name, path, timeout)
    try:
        if state.depth == 0:
            try:
                fd = _acquire(path, shared=shared, deadline=deadline)
            except BlockingIOError:
                raise _busy(what, name, path, timeout) from None
            state.fd, state.shared = fd, shared
            _write_holder(fd, step)
        elif state.shared and not shared:
            raise RuntimeError(
                f"{what} '{name}': an exclusive refresh lock was requested while this thread "
                "holds it shared (a step must take the exclusive lock first)"
            )
        state.depth += 1
    except BaseException:
        state.rlock.release()
        raise
    try:
        yield
    finally:
        state.depth -= 1
        if state.depth == 0 and state.fd is not None:
            fd, state.fd = state.fd, None
            try:
                if not state.shared:
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        state.rlock.release()


def _acquire(path: Path, *, shared: bool, deadline: float) -> int:
    """Lock ``path`` and return its open descriptor; BlockingIOError past ``deadline``.

    Waiters queue on a turnstile (``<lock>.queue``, held only while its holder waits for the
    lock): a sampler waiting behind gates gets in line, so the gates of another refresh, each
    releasing and re-taking the shared lock in a moment, cannot starve it.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    queue = os.open(path.with_name(path.name + QUEUE_SUFFIX), flags, 0o644)
    try:
        _flock(queue, shared=False, deadline=deadline)
        fd = os.open(path, flags, 0o644)
        try:
            _flock(fd, shared=shared, deadline=deadline)
        except BaseException:
            os.close(fd)
            raise
        return fd
    finally:
        os.close(queue)  # closing releases the turnstile


def _flock(fd: int, *, shared: bool, deadline: float) -> None:
    """flock with a deadline (polling; raises BlockingIOError when it passes)."""
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)


def _write_holder(fd: int, step: str) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "step": step,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    except OSError:
        pass  # informational only


# --------------------------------------------------------------------- temporary files


def temp_path(path: Path) -> Path:
    """A fresh temporary name next to ``path``: ``.<name>.<pid>.<uuid>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


@contextmanager
def removed_on_error(*paths: Path) -> Iterator[None]:
    """Delete ``paths`` (temporary files) if the block raises, then re-raise."""
    try:
        yield
    except BaseException:
        for p in paths:
            Path(p).unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(directory: Path) -> list[Path]:
    """Remove temporary files (:func:`temp_path`) in ``directory`` whose writer is dead.

    Call it holding the folder's refresh lock. Returns what was removed."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for p in directory.iterdir():
        m = _TEMP.match(p.name)
        if m is None or _alive(int(m["pid"])):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed
