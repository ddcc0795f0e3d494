"""Definitions built once in Dagster's forkserver and shared by every step forked from it.

Dagster's multiprocess executor runs each step in a new process, and each step process loads
the code location's definitions again before it runs: for the example project 1.2-1.5 s of
each step's start-up on 2 cores (its dbt component's asset specs, Dagster's component schema
snapshot, the repository's asset graph), seconds of every run spent building the same object. With
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
server forked its first step. Python keeps one forkserver per process: Dagster's run workers
(`dagster dev`, `dg launch`, the daemon's run launchers) are one process per run, so each run
builds its own; a long-lived process that calls `execute_job` several times (a notebook, a test
session) hands every later run's steps the first run's definitions, so do not use it there if
the definitions (their YAML, the dbt manifest) change between runs.

The server builds under a reconstruction load context that pins nothing, so a `dagster dev`
session does not refresh a state-backed component's state (e.g. `dbt parse`) in the server. A
step whose run pins something (defs state versions, reconstruction metadata, cached asset data:
a run launched from a code server with a state-backed component) builds its own, as without the
decorator. If the build fails in the server, its traceback goes to the server's stderr and each
step builds (and reports) it itself.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["built_once_per_forkserver", "freeze_before_fork", "in_forkserver"]

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
    if inspect.signature(fn).parameters:
        raise TypeError(
            f"built_once_per_forkserver: {fn.__qualname__} takes arguments; it decorates a "
            "function of none (a `@dg.definitions` function without a context, or a job function)"
        )
    if not in_forkserver():
        return fn
    built: list[T] = []

    @functools.wraps(fn)
    def shared() -> T:
        if built and not _run_pins_anything():
            return built[0]
        return fn()

    def build_in_server() -> None:
        with _load_context_pinning_nothing():
            result = fn()
            resolve = getattr(result, "get_repository_def", None)
            if callable(resolve):  # Dagster caches the resolved repository on the object
                resolve()
        built.append(result)

    _PENDING.append(build_in_server)
    freeze_before_fork()
    return shared


def freeze_before_fork() -> None:
    """In a forkserver: before each fork, build what :func:`built_once_per_forkserver`
    registered, then move every object the server holds out of the garbage collector's reach
    (:func:`gc.freeze`), so that a collection in a forked step does not walk them. Elsewhere:
    nothing. Called by :mod:`synth_platform.preload` and by the decorator; idempotent.

    Why: a step process inherits the server's ~0.9 million objects (the preloaded libraries).
    Its first full collection walked every one of them, writing to each object's header, and
    so copied most of the server's memory into the step: 0.56 s of CPU and 59,546 page faults
    per forked process, against 0.001 s and 805 with the objects frozen (measured after
    importing :mod:`synth_platform.preload` on 2 cores). This is what the ``gc.freeze``
    documentation recommends before ``fork()`` without ``exec()``."""
    global _HOOKED
    if _HOOKED or not in_forkserver():
        return
    os.register_at_fork(before=_before_fork)
    _HOOKED = True


_HOOKED = False


def _before_fork() -> None:
    _build_pending()
    gc.freeze()


def _build_pending() -> None:
    """Build what was registered, in the server, just before it forks (once: the list empties)."""
    while _PENDING:
        build = _PENDING.pop()
        try:
            build()
        except Exception:  # noqa: BLE001 - each step then builds and reports it itself
            traceback.print_exc()


@contextlib.contextmanager
def _load_context_pinning_nothing() -> Iterator[None]:
    """Dagster's definitions load context as a step's is for a run that pins nothing."""
    from dagster._core.definitions.definitions_load_context import (
        DefinitionsLoadContext,
        DefinitionsLoadType,
    )

    with DefinitionsLoadContext.scoped(
        DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION)
    ):
        yield


def _run_pins_anything() -> bool:
    """Whether the step's load context carries anything from its run that a build may read:
    defs state versions, reconstruction metadata, cached asset data. Unknown counts as yes."""
    try:
        from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext

        data = DefinitionsLoadContext.get()._repository_load_data  # noqa: SLF001
    except Exception:  # noqa: BLE001 - a Dagster that moved it: build, as without the decorator
        return True
    if data is None:
        return False
    state = data.defs_state_info
    return bool(
        (state is not None and state.info_mapping)
        or data.reconstruction_metadata
        or data.cacheable_asset_data
    )
