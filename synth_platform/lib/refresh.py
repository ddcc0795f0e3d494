"""Skip-unchanged refreshes: what a release was made from, and whether a refresh would redo it.

A table's *refresh key* is the SHA-256 of everything that decides its release: the source
fingerprint (content and schema of the real rows, order-independent), the model's spec digest
(its `meta.synthetic` block with thresholds, dbt column meta and tests), synth_platform's code
version, and the table's hand-written suites. Every release records the key it was made from
(`refresh_key` in its manifest). A refresh whose key equals the one of the table's latest release
would refit, resample and re-gate byte-identical data (every step is seeded): the synthesizer
step does not materialize, so Dagster skips everything downstream of it and nothing is
republished. A failed or blocked attempt records no release, so it is retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from synth_platform.lib.identifiers import safe_identifier
from synth_platform.lib.publish import latest_version
from synth_platform.lib.specs import ModelSpec


def _sha256(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def spec_digest(model: ModelSpec) -> str:
    """SHA-256 of what the dbt project says about an opted-in model: its `meta.synthetic`
    block (defaults filled in, so an explicit default is no change), column meta, descriptions
    and types, and the tests the platform reads (unique, not_null, accepted values,
    relationships)."""
    return _sha256(
        {
            "name": model.name,
            "relation": model.relation,
            "spec": model.spec.model_dump(mode="json"),
            "columns": {n: dataclasses.asdict(c) for n, c in sorted(model.columns.items())},
            "unique": sorted(model.unique_columns),
            "not_null": sorted(model.not_null_columns),
            "accepted_values": {k: list(v) for k, v in sorted(model.accepted_values.items())},
            "relationships": [list(r) for r in model.relationships],
        }
    )


def hand_written_suites(expectations_dir: Path | None, table: str) -> dict[str, str]:
    """SHA-256 per hand-written suite file of ``table`` (`<table>.<kind>.json` in the user's
    suites folder): editing one changes the table's refresh key."""
    if expectations_dir is None or not Path(expectations_dir).is_dir():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(expectations_dir).glob(f"{table}.*.json"))
    }


def code_version(repo: Path | None = None) -> str:
    """synth_platform's version, with the git commit when it runs from its own checkout.

    An installed wheel has no checkout of its own: asking git there would report the commit of
    whatever repository the environment happens to sit in (often the user's project).
    """
    from synth_platform import __version__

    if repo is None:
        checkout = Path(__file__).resolve().parents[2]
        pyproject = checkout / "pyproject.toml"
        is_ours = pyproject.exists() and 'name = "synth_platform"' in pyproject.read_text()
        if not (is_ours and (checkout / ".git").exists()):
            return __version__
        repo = checkout
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{__version__}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        return __version__


@cache
def current_code_version() -> str:
    """:func:`code_version`, asked once per process (it may run git)."""
    return code_version()


def refresh_inputs(
    *, model: ModelSpec, source_fingerprint: str, expectations_dir: Path | None
) -> dict[str, Any]:
    """The inputs a release of ``model`` is made from (hashes and versions only: no real value)."""
    return {
        "source_fingerprint": source_fingerprint,
        "spec_digest": spec_digest(model),
        "code_version": current_code_version(),
        "suites": hand_written_suites(expectations_dir, model.name),
    }


def asset_code_version(model: ModelSpec) -> str:
    """Dagster `code_version` of a table's assets: synth_platform's code version and the
    model's spec digest, so the UI marks a twin stale when either changes."""
    return f"{current_code_version()}-{spec_digest(model)[:12]}"


def refresh_key(inputs: Mapping[str, Any]) -> str:
    """The key of :func:`refresh_inputs`."""
    return _sha256(dict(inputs))


@dataclass(frozen=True)
class Unchanged:
    """The latest release of a table that a refresh with the same key would only repeat."""

    table: str
    version: str
    refresh_key: str
    published_at: str | None


def unchanged_release(store: Path, table: str, key: str) -> Unchanged | None:
    """The table's latest release when it was made from ``key``; else None (no release yet,
    or something changed)."""
    latest = latest_version(store, table)
    if latest is None:
        return None
    path = Path(store) / safe_identifier(table, what="table") / latest / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    if manifest.get("refresh_key") != key:
        return None
    return Unchanged(table, latest, key, manifest.get("published_at"))


def unchanged_group(store: Path, keys: Mapping[str, str]) -> dict[str, Unchanged] | None:
    """Every table's :class:`Unchanged` when all of them are, from one release set; else None
    (a group refits together, so one changed table refreshes all of them)."""
    found = {t: unchanged_release(store, t, k) for t, k in keys.items()}
    if any(v is None for v in found.values()):
        return None
    return {t: v for t, v in found.items() if v is not None}


def describe(unchanged: Sequence[Unchanged]) -> str:
    """One line for the run log and the UI."""
    return "; ".join(
        f"`{u.table}` {u.version} was made from the same source, spec, suites and code "
        f"(refresh key {u.refresh_key[:12]})"
        for u in unchanged
    )
