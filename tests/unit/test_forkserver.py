"""Definitions built once per forkserver (synth_platform.forkserver)."""

import json
import subprocess
import sys
import textwrap

import pytest

from synth_platform.forkserver import built_once_per_forkserver, in_forkserver

PROBE = """
import gc, os
from synth_platform.forkserver import built_once_per_forkserver

ATTEMPTS = []

@built_once_per_forkserver
def defs():
    ATTEMPTS.append(os.getpid())
    if os.environ.get("PROBE_FAIL_FIRST") and len(ATTEMPTS) == 1:
        raise RuntimeError("the first build fails")
    return {"built_in": os.getpid(), "box": []}  # a list: the garbage collector tracks it

def frozen(obj):
    # Tracked by the collector but in none of its three generations: in the frozen one.
    return gc.is_tracked(obj) and not any(o is obj for g in range(3) for o in gc.get_objects(g))

def child(queue):
    if os.environ.get("PROBE_PINNED"):  # as a run launched from a code server that pins state
        from dagster._core.definitions.definitions_load_context import (
            DefinitionsLoadContext, DefinitionsLoadType)
        from dagster._core.definitions.repository_definition.repository_definition import (
            RepositoryLoadData)
        from dagster_shared.serdes.objects.models.defs_state_info import DefsStateInfo
        pinned = RepositoryLoadData(defs_state_info=DefsStateInfo.add_version(None, "k", "v1"))
        with DefinitionsLoadContext.scoped(DefinitionsLoadContext(
                load_type=DefinitionsLoadType.RECONSTRUCTION, repository_load_data=pinned)):
            got = defs()
    else:
        got = defs()
    queue.put({"pid": os.getpid(), "built_in": got["built_in"], "attempts": list(ATTEMPTS),
               "frozen_objects": gc.get_freeze_count(), "build_frozen": frozen(got)})
"""

RUN = """
import json, multiprocessing, os, sys
import fs_probe
if __name__ == "__main__":
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["fs_probe"])
    queue = ctx.Queue()
    procs = [ctx.Process(target=fs_probe.child, args=(queue,)) for _ in range(3)]
    for p in procs:
        p.start()
    seen = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    print(json.dumps({"me": os.getpid(), "children": seen}))
"""


def _run(tmp_path, **env):
    (tmp_path / "fs_probe.py").write_text(textwrap.dedent(PROBE))
    out = subprocess.run(
        [sys.executable, "-c", RUN], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path), **env},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_outside_a_forkserver_the_function_is_left_as_it_is():
    def defs():
        return object()

    assert not in_forkserver()
    assert built_once_per_forkserver(defs) is defs


def test_a_definitions_function_that_takes_a_context_is_refused_everywhere():
    # Dagster would call it with its load context, which a build shared by the server cannot
    # take: refused where it is decorated, not only in the forked steps.
    def defs(context):
        return context

    with pytest.raises(TypeError, match="takes arguments"):
        built_once_per_forkserver(defs)


def test_steps_forked_from_one_server_share_what_it_built_once(tmp_path):
    run = _run(tmp_path)
    children = run["children"]
    server = {c["built_in"] for c in children}
    assert len(server) == 1  # one build, shared by all three
    (built_in,) = server
    assert built_in not in {run["me"], *(c["pid"] for c in children)}  # in the server
    assert all(c["attempts"] == [built_in] for c in children)  # no child built it again


def test_the_server_freezes_its_objects_before_each_fork_the_build_included(tmp_path):
    # A forked step's garbage collector must not walk (and so copy) the server's objects: the
    # server froze them, and it built the definitions first, so they are frozen too.
    children = _run(tmp_path)["children"]
    assert all(c["frozen_objects"] > 1000 for c in children)
    assert all(c["build_frozen"] for c in children)
    # A step that built its own (the server's build failed) has it unfrozen, as it should.
    rebuilt = _run(tmp_path, PROBE_FAIL_FIRST="1")["children"]
    assert all(c["frozen_objects"] > 1000 and not c["build_frozen"] for c in rebuilt)


def test_a_build_that_fails_in_the_server_is_built_by_each_step(tmp_path):
    children = _run(tmp_path, PROBE_FAIL_FIRST="1")["children"]
    assert all(c["built_in"] == c["pid"] for c in children)  # each step built its own
    assert all(len(c["attempts"]) == 2 for c in children)  # the server's failed try, then its own


def test_a_step_whose_run_pins_defs_state_builds_its_own(tmp_path):
    # The server built under a context that pins nothing; a run that pins a state version (a
    # code server's state-backed component) must not get that build.
    children = _run(tmp_path, PROBE_PINNED="1")["children"]
    assert all(c["built_in"] == c["pid"] for c in children)
