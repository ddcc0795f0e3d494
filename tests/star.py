"""A generated airline star schema, shaped like a real one (nycflights13): the warehouse tables
and a dbt project over them, for the tests and `bench/multitable.py`.

- `carriers` (16 rows) and `airports` (`airports` rows): public reference data (2- and
  3-letter codes), declared `mode: reference`.
- `planes` (`planes` rows): tail numbers `N` + 1-4 digits + 0-2 letters (natural string keys),
  build year with nulls, seats heavy-tailed; synthesized.
- `flights` (`flights` rows): four foreign keys: `carrier` (skewed), `origin` (heavy fan-in:
  three airports hold every flight), `dest` (Zipf over ~100 airports, 1% orphans, the dbt test
  at `severity: warn`), `tailnum` (a few planes fly most, 2% orphans at `severity: warn`, 1%
  missing); zero-inflated, heavy-tailed delays with nulls for cancelled flights; distance
  follows the airports' coordinates.
"""

import string
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

LETTERS = np.array(list(string.ascii_uppercase))
DIGITS = np.array(list(string.digits))


def _codes(rng: np.random.Generator, n: int, width: int, alphabet: np.ndarray) -> np.ndarray:
    out: set[str] = set()
    while len(out) < n:
        draw = rng.choice(alphabet, size=(n, width))
        out.update("".join(r) for r in draw)
    return np.array(sorted(out)[:n])


def _tailnums(rng: np.random.Generator, n: int) -> np.ndarray:
    out: set[str] = set()
    while len(out) < n:
        digits = rng.integers(1, 10_000, size=n)
        letters = rng.choice(LETTERS, size=(n, 2))
        tails = rng.integers(0, 3, size=n)
        out.update(
            f"N{d}{''.join(ls[:k])}" for d, ls, k in zip(digits, letters, tails, strict=True)
        )
    return np.array(sorted(out)[:n])


def generate_star(
    *, flights: int = 5_000, airports: int = 300, planes: int = 600, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """The four tables (see the module docstring)."""
    rng = np.random.default_rng(seed)
    carrier_codes = _codes(rng, 16, 2, np.concatenate([LETTERS, DIGITS]))
    carriers = pd.DataFrame(
        {"carrier": carrier_codes, "name": [f"{c} Airlines Inc." for c in carrier_codes]}
    )
    faa = _codes(rng, airports, 3, LETTERS)
    lat = rng.uniform(20, 65, airports).round(4)
    lon = rng.uniform(-160, -68, airports).round(4)
    airports_df = pd.DataFrame(
        {
            "faa": faa,
            "name": [f"{c} Regional Airport" for c in faa],
            "lat": lat,
            "lon": lon,
            "alt": np.maximum(0, rng.lognormal(6, 1.2, airports)).round().astype(int),
            "tz": np.clip(np.round((lon + 7.5) / 15), -10, -5).astype(int),
        }
    )
    tail = _tailnums(rng, planes + planes // 20)  # the last ones are orphans: no plane row
    manufacturers = np.array(["BOEING", "AIRBUS", "EMBRAER", "BOMBARDIER", "CESSNA", "PIPER"])
    maker = rng.choice(manufacturers, size=planes, p=[0.4, 0.3, 0.15, 0.1, 0.03, 0.02])
    seats = np.where(
        np.isin(maker, ["CESSNA", "PIPER"]),
        rng.integers(2, 9, planes),
        np.round(rng.lognormal(5, 0.35, planes)).astype(int),
    )
    year = rng.integers(1960, 2014, planes).astype("float64")
    year[rng.random(planes) < 0.05] = np.nan
    planes_df = pd.DataFrame(
        {
            "tailnum": tail[:planes],
            "year": pd.array(year, dtype="Int64"),
            "manufacturer": maker,
            "engines": np.where(seats > 100, 2, rng.integers(1, 3, planes)),
            "seats": seats,
        }
    )

    n = flights
    hubs = rng.choice(airports, size=3, replace=False)
    origin_ix = rng.choice(hubs, size=n, p=[0.45, 0.35, 0.20])
    dest_pool = rng.choice(airports, size=min(100, airports), replace=False)
    zipf = 1.0 / np.arange(1, len(dest_pool) + 1) ** 1.1
    dest_ix = rng.choice(dest_pool, size=n, p=zipf / zipf.sum())
    dest = faa[dest_ix].astype(object)
    orphan_dest = rng.random(n) < 0.01
    dest[orphan_dest] = rng.choice(["XQA", "XQB", "XQC"], size=int(orphan_dest.sum()))
    plane_weight = 1.0 / np.arange(1, planes + 1) ** 0.9  # a few planes fly most
    plane_ix = rng.choice(planes, size=n, p=plane_weight / plane_weight.sum())
    tailnum = tail[plane_ix].astype(object)
    orphan_tail = rng.random(n) < 0.02
    tailnum[orphan_tail] = rng.choice(tail[planes:], size=int(orphan_tail.sum()))
    tailnum[rng.random(n) < 0.01] = None
    carrier_p = rng.dirichlet(np.full(16, 0.6))
    d_lat, d_lon = lat[dest_ix] - lat[origin_ix], lon[dest_ix] - lon[origin_ix]
    distance = np.round(np.hypot(d_lat * 69, d_lon * 53) + rng.normal(0, 5, n)).clip(17)
    dep_delay = np.where(rng.random(n) < 0.55, 0.0, np.round(rng.lognormal(2.5, 1.2, n)))
    dep_delay = np.where(rng.random(n) < 0.15, -np.round(rng.exponential(4, n)), dep_delay)
    cancelled = rng.random(n) < 0.02
    dep_delay[cancelled] = np.nan
    arr_delay = dep_delay + np.round(rng.normal(-5, 10, n))
    departed = pd.Timestamp("2013-01-01") + pd.to_timedelta(
        rng.integers(0, 365 * 24 * 60, n), unit="min"
    )
    flights_df = pd.DataFrame(
        {
            "flight_id": np.arange(1, n + 1),
            "carrier": rng.choice(carrier_codes, size=n, p=carrier_p),
            "tailnum": tailnum,
            "origin": faa[origin_ix],
            "dest": dest,
            "departed_at": departed,
            "dep_delay": dep_delay,
            "arr_delay": arr_delay,
            "distance": distance,
        }
    )
    return {
        "carriers": carriers,
        "airports": airports_df,
        "planes": planes_df,
        "flights": flights_df,
    }


MODELS = {
    "carriers": """\
models:
  - name: carriers
    config: {meta: {synthetic: {mode: reference}}}
    columns:
      - name: carrier
        data_tests: [unique, not_null]
""",
    "airports": """\
models:
  - name: airports
    config: {meta: {synthetic: {mode: reference}}}
    columns:
      - name: faa
        data_tests: [unique, not_null]
""",
    "planes": """\
models:
  - name: planes
    config: {meta: {synthetic: {seed: 3}}}
    columns:
      - name: tailnum
        data_tests: [unique, not_null]
""",
    "flights": """\
models:
  - name: flights
    config: {meta: {synthetic: {seed: 5}}}
    columns:
      - name: flight_id
        data_tests: [unique, not_null]
      - name: carrier
        data_tests:
          - relationships: {arguments: {to: ref('carriers'), field: carrier}}
      - name: origin
        data_tests:
          - relationships: {arguments: {to: ref('airports'), field: faa}}
      - name: dest
        data_tests:
          - relationships:
              arguments: {to: ref('airports'), field: faa}
              config: {severity: warn}
      - name: tailnum
        data_tests:
          - relationships:
              arguments: {to: ref('planes'), field: tailnum}
              config: {severity: warn}
""",
}


def write_star_project(root: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """A dbt project in ``root/dbt_project`` whose models select the raw tables written into
    ``root/warehouse.duckdb`` (schema `raw`); returns the project folder."""
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists raw")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"create or replace table raw.{name} as select * from frame")
            con.unregister("frame")
    project = root / "dbt_project"
    models = project / "models"
    models.mkdir(parents=True, exist_ok=True)
    (project / "dbt_project.yml").write_text(
        "name: star\nversion: '1.0.0'\nprofile: star\nmodel-paths: [models]\n"
        "models:\n  star:\n    +materialized: table\n"
        "flags:\n  send_anonymous_usage_stats: false\n"
    )
    (project / "profiles.yml").write_text(
        f"star:\n  target: local\n  outputs:\n    local:\n      type: duckdb\n"
        f"      path: {warehouse}\n      threads: 1\n"
    )
    sources = "sources:\n  - name: raw\n    schema: raw\n    tables:\n" + "".join(
        f"      - name: {t}\n" for t in tables
    )
    (models / "_sources.yml").write_text(sources)
    for name in tables:
        (models / f"{name}.sql").write_text(f"select * from {{{{ source('raw', '{name}') }}}}\n")
        (models / f"{name}.yml").write_text(MODELS[name])
    return project


def star_definitions(project: Path, home: Path):
    """`@dbt_assets` over the star project plus the twins (factory), one job for everything."""
    import sys

    import dagster as dg
    from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

    from synth_platform import build_synthetic_definitions
    from synth_platform.defs.build import ensure_manifest

    dbt_project = DbtProject(project)

    @dbt_assets(manifest=ensure_manifest(dbt_project), project=dbt_project, name="star_dbt")
    def star_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(["build"], context=context).stream()

    return dg.Definitions.merge(
        build_synthetic_definitions(
            dbt_project=dbt_project, dbt_assets=[star_dbt], home=home, refresh_upstream=True
        ),
        dg.Definitions(
            assets=[star_dbt],
            resources={
                "dbt": DbtCliResource(
                    project_dir=dbt_project,
                    dbt_executable=str(Path(sys.executable).with_name("dbt")),
                )
            },
            executor=dg.in_process_executor,
        ),
    )
