"""Definitions built once in Dagster's forkserver and shared by every step forked from it.

Dagster's multiprocess executor runs each step in a new process, and each step process loads
the code location's definitions again before it runs: for the example project 0.3-0.5 s per
step on 2 cores (its dbt component's asset specs, Dagster's component schema snapshot, the
repository's asset graph), that is seconds of every run spent building the same object. With
``start_method: forkserver`` the step processes are forked from one server process per run
worker; decorate the definitions function with :func:`built_once_per_forkserver` and list its
module in ``preload_modules``: the server builds the definitions (and resolves their repository)
once, just before it forks the first step, and every step forked from it starts with them::

    @dg.definitions
    @built_once_per_forkserver
    def defs() -> dg.Definitions:
        return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)

Anywhere else (the code server, the UI, an in-process run, a test) the decorator returns the
function unchanged. Within one forkserver every step sees the definitions as they were when the
server forked its first step: the server lives as long as its run worker process (Dagster starts
one per run), and it already serves every step with the environment it started with. If the
build fails in the server, each step builds (and reports) it itself, as without the decorator.
This module imports nothing heavy: a definitions module can import it freely.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

__all__ = ["built_once_per_forkserver", "in_forkserver"]

T = TypeVar("T")

#: Builders registered in this forkserver, run before its first fork.
_PENDING: list[Callable[[], object]] = []


def in_forkserver() -> bool:
    """Whether this process is a `multiprocessing` forkserver (started by Python as
    ``python -c 'from multiprocessing.forkserver import main; ...'``)."""
    command = " ".join(getattr(sys, "orig_argv", ()))
    return "from multiprocessing.forkserver import main" in command


def built_once_per_forkserver(fn: Callable[[], T]) -> Callable[[], T]:
    """In a forkserver: ``fn`` called once, before the server's first fork, its result handed
    to every call in the forked processes. Elsewhere: ``fn`` itself. ``fn`` takes no argument
    (a ``@dg.definitions`` function, or a job function given to ``dg.reconstructable``)."""
    if not in_forkserver():
        return fn
    built: list[T] = []

    @functools.wraps(fn)
    def shared() -> T:
        if not built:
            built.append(fn())
        return built[0]

    if not _PENDING:
        os.register_at_fork(before=_build_pending)
    _PENDING.append(shared)
    return shared


def _build_pending() -> None:
    """Build what was registered, in the server, just before it forks (once: the list empties).
    A Definitions object also resolves its repository here (Dagster caches it on the object),
    which is the other half of what a step process would redo."""
    while _PENDING:
        build = _PENDING.pop()
        try:
            result = build()
            resolve = getattr(result, "get_repository_def", None)
            if callable(resolve):
                resolve()
        except Exception:  # noqa: BLE001, S110 - each step then builds and reports it itself
            pass
