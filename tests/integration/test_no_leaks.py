"""No real value leaves the private zone: not in the public store, not in Dagster's event log.

The example runs once; then a planted synthesizer whose numbers overshoot every real range makes
the validity checks fail, and every piece of text that run put in Dagster (event messages,
metadata, check descriptions) is scanned for real values: the profiled bounds, real rows' PII
and real categories. A control plants a real value and shows the scan finds it.
"""

import math
import re

import cloudpickle
import dagster as dg
import duckdb
import pandas as pd
import pytest

from synth_platform.lib import lifecycle
from synth_platform.lib.home import SynthHome
from synth_platform.lib.publish import latest_version
from tests.example import REFRESH_JOB, example_definitions

SCALE = 0.5  # 500 customers: at 300 the DCR share of 57 holdout rows is too noisy (README)
TABLES = ("customers", "accounts", "transactions")
GROUP_STEPS = [f"{t}_{s}" for t in TABLES for s in ("synthetic", "published")]


class OvershootingSynthesizer:
    """The fitted synthesizer with every numeric value pushed 10x past the real maximum."""

    def __init__(self, inner, key: str | None) -> None:
        self.inner, self.key = inner, key

    def reset_sampling(self) -> None:
        self.inner.reset_sampling()

    def _set_random_state(self, seed: int) -> None:
        self.inner._set_random_state(seed)

    def sample(self, num_rows: int) -> dict[str, pd.DataFrame]:
        out = self.inner.sample(num_rows=num_rows)
        for table, frame in out.items():
            for c in frame.columns:
                if c != self.key and pd.api.types.is_float_dtype(frame[c]):
                    frame[c] = frame[c].abs() * 10 + 1e6
            out[table] = frame
        return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("noleak")
    defs = example_definitions(home=root, expectations_dir=root / "expectations")
    result = defs.resolve_job_def(REFRESH_JOB).execute_in_process(
        run_config={"ops": {"demo_bank_source": {"config": {"scale": SCALE, "seed": 7}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert result.success
    return {"root": root, "home": SynthHome(root), "defs": defs}


def _real(root) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(root / "source" / "bank.duckdb"), read_only=True) as con:
        return {t: con.execute(f"select * from {t}").df() for t in TABLES}


def _forms(value) -> set[str]:
    """Ways a real value could be printed; only distinctive ones (no 0/1-like tokens)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return set()
    if isinstance(value, pd.Timestamp):
        return {value.isoformat(), str(value), str(value.date())}
    if isinstance(value, bool):
        return set()
    if isinstance(value, int | float):
        forms = {repr(value), str(value), f"{value:.2f}", f"{value:.4g}", f"{value:,.2f}"}
        return {f for f in forms if len(f.strip("-0.")) >= 4}
    text = str(value)
    return {text} if len(text) >= 4 else set()


def _sensitive(real: dict[str, pd.DataFrame]) -> set[str]:
    """Real bounds of every column, every PII value, every real category."""
    out: set[str] = set()
    for frame in real.values():
        for c in frame.columns:
            s = frame[c].dropna()
            if s.empty:
                continue
            if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
                if c.endswith("_id"):
                    continue  # keys are re-keyed, never published
                out |= _forms(s.min().item() if hasattr(s.min(), "item") else s.min())
                out |= _forms(s.max().item() if hasattr(s.max(), "item") else s.max())
            elif s.nunique() <= 30:
                out |= {str(v) for v in s.unique() if len(str(v)) >= 4}  # categories
            else:
                out |= {str(v) for v in s.unique()[:2000] if len(str(v)) >= 6}  # PII
    return out


def _appears(value: str, text: str) -> bool:
    """``value`` as a whole token of ``text`` (a category 'card' is not in 'cardinality')."""
    return re.search(rf"(?<![\w./]){re.escape(value)}(?![\w/])", text) is not None


def _shown(value) -> str:
    """A metadata value as text; column schemas carry the user's own dbt docs, not data."""
    value = getattr(value, "value", value)
    return "" if isinstance(value, dg.TableSchema) else repr(value)


def _dagster_text(result) -> str:
    parts = []
    for event in result.all_events:
        parts.append(event.message or "")
        data = event.event_specific_data
        metadata = getattr(data, "metadata", None) or {}
        if hasattr(data, "materialization"):
            metadata = data.materialization.metadata
        if hasattr(data, "asset_check_evaluation"):
            metadata = data.asset_check_evaluation.metadata
            parts.append(data.asset_check_evaluation.description or "")
        for value in (metadata or {}).values():
            parts.append(_shown(value))
    for e in result.get_asset_check_evaluations():
        parts.append(e.description or "")
        parts += [_shown(v) for v in e.metadata.values()]
    return "\n".join(parts)


def test_no_real_value_reaches_dagster_when_validity_fails(env):
    home, root = env["home"], env["root"]
    previous = {t: latest_version(home.public_dir, t) for t in TABLES}
    for t in TABLES:
        paths = lifecycle.paths_for(home, t)
        meta, _ = lifecycle.load_metadata(paths, t)
        with open(paths.model, "rb") as fh:
            inner = cloudpickle.load(fh)
        with open(paths.model, "wb") as fh:
            cloudpickle.dump(OvershootingSynthesizer(inner, meta.primary_key), fh)
    result = (
        env["defs"]
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            asset_selection=[dg.AssetKey(k) for k in GROUP_STEPS],
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    )
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["accounts_validity"].passed is False  # the planted defect is caught
    text = _dagster_text(result)
    sensitive = _sensitive(_real(root))
    assert len(sensitive) > 100
    leaked = sorted(s for s in sensitive if _appears(s, text))
    where = {s: [line[:300] for line in text.splitlines() if s in line][:2] for s in leaked[:5]}
    assert not leaked, where
    # Control: the scan covers the form in which validity used to print a real bound
    # ("observed 48213.77, bound {...}"): the real maximum balance, as repr() prints it.
    real_max = _real(root)["accounts"]["balance"].max().item()
    assert repr(real_max) in sensitive
    assert [s for s in sensitive if _appears(s, f"observed {real_max!r}, bound {{}}")]
    for t in TABLES:
        assert latest_version(home.public_dir, t) == previous[t]


def test_public_store_holds_no_real_pii_value_of_any_type(env):
    home, root = env["home"], env["root"]
    real = _real(root)["customers"]
    with duckdb.connect() as con:
        published = con.execute(
            "select * from read_parquet(?)",
            [str(next((home.public_dir / "customers").glob("v*/data.parquet")))],
        ).df()
    pii = ("full_name", "email", "phone", "national_id", "street_address", "birth_date")
    for column in pii:
        real_values = set(real[column].dropna().astype(str))
        fake_values = set(published[column].dropna().astype(str))
        assert fake_values, column
        assert not real_values & fake_values, (column, sorted(real_values & fake_values)[:5])
