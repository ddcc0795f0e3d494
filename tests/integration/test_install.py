"""synth_platform installed from its wheel into someone else's Dagster project.

The wheel is built from this checkout and installed into a fresh virtual environment (not the
editable checkout: the test asserts which copy is imported). The environment borrows the
already-installed dependencies of the test's own environment through a `.pth` path line (its
nested `.pth` files, among them the editable install's finder, are not processed), so nothing
is downloaded. The user projects live in a temporary folder outside the repository: their own
dbt project over a DuckDB source file written by the current DuckDB (2.x), loaded either with
`DbtProjectComponent` + the component scaffolded by `dg scaffold defs`, or with `@dbt_assets` +
`build_synthetic_definitions`. Both are materialized with `dg launch`.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], *, cwd: Path, env: dict, timeout: int = 900, stdout: bool = False) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-6000:]}"
    return proc.stdout if stdout else out


@pytest.fixture(scope="module")
def user_env(tmp_path_factory) -> dict:
    """A venv with the synth_platform wheel installed, and the environment to run it in."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "synth_platform",
        src / "synth_platform",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    dist = root / "dist"
    _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist), str(src)],
        cwd=src,
        env=dict(os.environ),
    )
    (wheel,) = dist.glob("synth_platform-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=root, env=dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        **os.environ,
        # dagster-dbt runs the `dbt` on PATH; the borrowed environment's bin has it.
        "PATH": f"{venv / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        + os.environ.get("PATH", ""),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("SYNTH_HOME", None)  # the user project's own root must decide
    env.pop("MLFLOW_TRACKING_URI", None)
    _run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
         "--force-reinstall", str(wheel)],
        cwd=root, env=env,
    )  # fmt: skip
    where = _run(
        [str(python), "-c", "import synth_platform; print(synth_platform.__file__)"],
        cwd=root,
        env=env,
        stdout=True,
    )
    assert where.strip().splitlines()[-1].startswith(str(site)), where
    return {"python": str(python), "env": env, "root": root}


def _write_source(path: Path, n: int = 400) -> None:
    """Raw orders with PII, a channel, and an item count tied to the amount (one real trend)."""
    rng = np.random.default_rng(0)
    channel = rng.choice(["web", "store", "app"], n, p=[0.5, 0.3, 0.2])
    amount = np.round(rng.lognormal(4, 0.5, n), 2)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(n),
            "customer_email": [f"user{i}@example.org" for i in rng.integers(0, 300, n)],
            "amount": amount,
            "items": np.maximum(1, np.round(amount / 20 + rng.normal(0, 0.5, n))).astype(int),
            "channel": channel,
            "ordered_at": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 300 * 86400, n), unit="s"),
        }
    )
    assert int(duckdb.__version__.split(".")[0]) >= 2, duckdb.__version__
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.register("frame", frame)
        con.execute("create table orders as select * from frame")


def _user_project(root: Path) -> Path:
    """A user's Dagster project with its own dbt project over a DuckDB warehouse."""
    project = root / "shop"
    (project / "shop" / "defs").mkdir(parents=True)
    _write_source(project / "data" / "raw.duckdb")
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "shop"
            version = "0.1.0"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "shop"
            code_location_target_module = "shop.definitions"
            """
        )
    )
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "defs" / "__init__.py").write_text("")
    dbt = project / "shop_dbt"
    (dbt / "models").mkdir(parents=True)
    (dbt / "dbt_project.yml").write_text(
        "name: shop\nversion: '1.0.0'\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n"
    )
    # Absolute paths: DbtProjectComponent runs dbt from a copy of the project.
    profile = {
        "shop": {
            "target": "dev",
            "outputs": {
                "dev": {
                    "type": "duckdb",
                    "path": str(project / "data" / "warehouse.duckdb"),
                    "attach": [
                        {
                            "path": str(project / "data" / "raw.duckdb"),
                            "alias": "raw",
                            "read_only": True,
                        }  # fmt: skip
                    ],
                }
            },
        }
    }
    (dbt / "profiles.yml").write_text(yaml.safe_dump(profile))
    (dbt / "models" / "sources.yml").write_text(
        "sources:\n  - name: raw\n    database: raw\n    schema: main\n    tables:\n"
        "      - name: orders\n"
    )
    (dbt / "models" / "stg_orders.sql").write_text(
        "{{ config(materialized='view') }}\nselect * from {{ source('raw', 'orders') }}\n"
    )
    # The mart is a view over the attached source: read through the profile's attach.
    (dbt / "models" / "orders.sql").write_text(
        "{{ config(materialized='view') }}\nselect * from {{ ref('stg_orders') }}\n"
    )
    model = {
        "models": [
            {
                "name": "orders",
                "description": "One row per order.",
                "config": {"meta": {"synthetic": {"seed": 3}}},
                "columns": [
                    {
                        "name": "order_id",
                        "description": "Primary key.",
                        "data_tests": ["unique", "not_null"],
                    },
                    {
                        "name": "customer_email",
                        "description": "Who ordered.",
                        "config": {"meta": {"pii": "email"}},
                    },
                    {"name": "amount", "description": "Order total."},
                    {"name": "items", "description": "Items in the order."},
                    {"name": "channel", "description": "Where it was placed."},
                    {"name": "ordered_at", "description": "When."},
                ],
            }  # fmt: skip
        ]
    }
    (dbt / "models" / "orders.yml").write_text(yaml.safe_dump(model, sort_keys=False))
    return project


def _dg(user_env: dict, project: Path, *args: str, stdout: bool = False) -> str:
    env = {**user_env["env"], "DAGSTER_HOME": str(project / ".dagster")}
    (project / ".dagster").mkdir(exist_ok=True)
    (project / ".dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return _run(
        [user_env["python"], "-m", "dagster_dg_cli.cli", *args], cwd=project, env=env, stdout=stdout
    )


def _published(user_env: dict, project: Path) -> dict:
    script = textwrap.dedent(
        f"""\
        import json, synth_platform
        with synth_platform.connect({str(project / ".synth" / "public")!r}) as con:
            rows = con.execute("select count(*) from orders").fetchall()[0][0]
            cols = [r[0] for r in con.execute("describe orders").fetchall()]
            emails = [r[0] for r in con.execute("select customer_email from orders").fetchall()]
        print(json.dumps({{"rows": rows, "columns": cols, "emails": emails,
                           "module": synth_platform.__file__}}))
        """
    )
    out = _run([user_env["python"], "-c", script], cwd=project, env=user_env["env"], stdout=True)
    return json.loads(out.strip().splitlines()[-1])


def _assert_twin(user_env: dict, project: Path) -> None:
    got = _published(user_env, project)
    assert got["rows"] == 400
    assert got["columns"] == ["order_id", "customer_email", "amount", "items", "channel",
                              "ordered_at"]  # fmt: skip
    real = set(
        duckdb.connect(str(project / "data" / "raw.duckdb"), read_only=True)
        .execute("select customer_email from orders")
        .df()["customer_email"]
    )
    assert not real & set(got["emails"])  # PII faked, never a real value
    assert "/venv/" in got["module"] and str(REPO) not in got["module"]


def test_component_scaffolded_with_dg_publishes_a_twin_of_the_users_dbt_model(user_env):
    project = _user_project(user_env["root"] / "component")
    (project / "shop" / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n\n@dg.definitions\n"
        "def defs() -> dg.Definitions:\n"
        "    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    (project / "shop" / "defs" / "transform").mkdir()
    (project / "shop" / "defs" / "transform" / "defs.yaml").write_text(
        "type: dagster_dbt.DbtProjectComponent\nattributes:\n"
        '  project: "{{ context.project_root }}/shop_dbt"\n'
    )
    listed = _dg(user_env, project, "list", "components")
    assert "synth_platform.SyntheticTwinsComponent" in listed
    _dg(user_env, project, "scaffold", "defs", "synth_platform.SyntheticTwinsComponent", "twins")
    text = (project / "shop" / "defs" / "twins" / "defs.yaml").read_text()
    assert yaml.safe_load(text) == {
        "type": "synth_platform.SyntheticTwinsComponent",
        "attributes": {"dbt_project": "../../../shop_dbt"},  # found the user's dbt project
    }
    assert "\n  # public_dir: null  # public store" in text  # the optional ones, commented
    _dg(user_env, project, "check", "defs")
    assets = {
        a["asset_key"]: a
        for a in json.loads(_dg(user_env, project, "list", "defs", "--json", stdout=True))["assets"]
    }
    # Downstream of the user's own dbt model key; no second copy of the dbt assets.
    assert assets["orders_split"]["dependency_keys"] == ["orders"]
    assert assets["orders"]["kinds"] == ["dbt", "duckdb"]
    assert sum(1 for k in assets if k == "orders") == 1
    assert assets["orders_published"]["group_name"] == "synthetic_orders"
    # The user's dbt models first (their own job would), then the twins' refresh job.
    _dg(user_env, project, "launch", "--assets", '+key:"orders"')
    _dg(user_env, project, "launch", "--job", "synthetic_refresh")
    _assert_twin(user_env, project)
    # Every piece of state under the user's project root.
    assert {p.name for p in (project / ".synth").iterdir()} >= {"private", "public", "mlflow"}


def test_dbt_assets_with_the_factory_publish_a_twin(user_env):
    project = _user_project(user_env["root"] / "factory")
    (project / "shop" / "definitions.py").write_text(
        textwrap.dedent(
            """\
            from pathlib import Path

            import dagster as dg
            from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

            from synth_platform import build_synthetic_definitions

            ROOT = Path(__file__).resolve().parents[1]
            project = DbtProject(ROOT / "shop_dbt")
            project.prepare_if_dev()


            class Keys(__import__("dagster_dbt").DagsterDbtTranslator):
                def get_asset_key(self, props):
                    return super().get_asset_key(props).with_prefix("warehouse")


            @dbt_assets(manifest=project.manifest_path, project=project,
                        dagster_dbt_translator=Keys())
            def shop_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
                yield from dbt.cli(["build"], context=context).stream()


            defs = dg.Definitions.merge(
                dg.Definitions(assets=[shop_dbt_models],
                               resources={"dbt": DbtCliResource(project_dir=project)},
                               executor=dg.in_process_executor),
                build_synthetic_definitions(dbt_project=project, dbt_assets=[shop_dbt_models],
                                            home=ROOT / ".synth"),
            )
            """
        )
    )
    (project / "shop_dbt" / "target").mkdir()
    _run(
        [str(Path(sys.executable).with_name("dbt")), "parse", "--quiet"],
        cwd=project / "shop_dbt",
        env=user_env["env"],
    )
    assets = {
        a["asset_key"]: a
        for a in json.loads(_dg(user_env, project, "list", "defs", "--json", stdout=True))["assets"]
    }
    # The custom translator of the user's @dbt_assets is respected.
    assert assets["orders_split"]["dependency_keys"] == ["warehouse/orders"]
    _dg(user_env, project, "launch", "--assets", '+key:"warehouse/orders"')
    _dg(user_env, project, "launch", "--job", "synthetic_refresh")
    _assert_twin(user_env, project)


def test_every_entry_point_of_the_installed_wheel_loads(user_env):
    """What the wheel's metadata promises resolves: every entry point loads (a console script
    once named a module that no longer existed, and failed with a traceback), among them the
    `dg` registry module."""
    script = textwrap.dedent(
        """
        from importlib.metadata import distribution
        for ep in distribution("synth_platform").entry_points:
            ep.load()
            print(ep.group, ep.name, ep.value)
        """
    )
    out = _run([user_env["python"], "-c", script], cwd=user_env["root"], env=user_env["env"],
               stdout=True)  # fmt: skip
    assert "dagster_dg_cli.registry_modules synth_platform synth_platform" in out.splitlines(), out
