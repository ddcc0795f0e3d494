"""Tables synthesized as a group (related by dbt `relationships` tests).

Per group: `<t>_split` per table (children after their parents) → `<group>_group_synthesizer` →
`<group>_group_synthetic` (one step writing every `<t>_synthetic`) → the per-table blocking checks
plus, per child table, `<t>_integrity`, `<t>_cardinality` and `<t>_cross_table` →
`<group>_group_published` (one step publishing every `<t>_published` in one atomic commit).
"""

import dataclasses
from collections.abc import Mapping

import dagster as dg

from synth_platform.defs.resources import MlflowResource, SynthHomeResource
from synth_platform.defs.tables import (
    RefreshConfig,
    Wiring,
    _md_table,
    candidate_metadata,
    column_schema,
    gate_checks,
    mlflow_links,
    priority,
    release_metadata,
    run_tags,
    split_asset,
    unchanged_observation,
)
from synth_platform.lib import plan, refresh
from synth_platform.lib.plan import TableGroup
from synth_platform.lib.specs import ModelSpec


def group_definitions(
    group: TableGroup,
    models: Mapping[str, ModelSpec],
    upstream: Mapping[str, dg.AssetKey],
    *,
    wiring: Wiring,
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """Assets and checks of one group (see the module docstring)."""
    slug = plan.group_slug(group)
    dagster_group = wiring.group
    tags = {"synth_platform/group": slug}
    wiring = dataclasses.replace(wiring, tags=tuple(tags.items()))
    rels = "; ".join(f"`{r.key}`" for r in group.checked_relationships)
    assets: list[dg.AssetsDefinition] = [
        split_asset(
            models[t],
            upstream[t],
            wiring=wiring,
            parents=plan.parent_keys(group, t),
            references={r.child_column: r.parent for r in group.references if r.child == t},
        )  # fmt: skip
        for t in group.tables
    ]
    checks: list[dg.AssetChecksDefinition] = []
    synth_key = dg.AssetKey(f"{slug}_group_synthesizer")

    @dg.asset(
        key=synth_key, deps=[dg.AssetKey(f"{t}_split") for t in group.tables],
        group_name=dagster_group, kinds={"sdv", "mlflow"}, tags=tags, output_required=False,
        automation_condition=wiring.automation, op_tags=priority("synthesizer"),
        code_version="-".join(refresh.asset_code_version(models[t]) for t in group.tables),
        description=f"Synthesizer of group `{group.name}` ({', '.join(group.tables)}; {rels}): "
        "SDV HMA where it accepts the schema and the row budget, else one synthesizer per "
        "table with children re-keyed to synthetic parents (`meta.synthetic.multi_table`). "
        "Skipped (with everything downstream) when every table's source, spec, suites and "
        "code are those of its latest release; one changed table refreshes the group.",
    )  # fmt: skip
    def synthesizer(
        context: dg.AssetExecutionContext,
        config: RefreshConfig,
        synth: SynthHomeResource,
        synth_mlflow: MlflowResource,
    ):
        from synth_platform.lib import lifecycle

        home = synth.home.ensure()
        inputs = {
            t: lifecycle.table_refresh_inputs(
                home=home, model=models[t], expectations_dir=synth.suites
            )
            for t in group.tables
        }
        same = refresh.unchanged_group(
            home.public_dir, {t: refresh.refresh_key(i) for t, i in inputs.items()}
        )
        if same is not None and not config.force:
            yield unchanged_observation(context, synth_key, list(same.values()))
            return
        from synth_platform.lib import group as G  # the fits' libraries: not for a no-op

        r = G.train_group(
            home=home,
            group=group,
            models=models,
            tracking_uri=synth_mlflow.tracking_uri,
            run_tags=run_tags(context, synth_key.to_user_string()),
            refresh_inputs=inputs,
            progress=context.log.info,
        )
        yield dg.MaterializeResult(
            metadata={
                "strategy": r.strategy,
                "strategy_reason": r.reason,
                "fit_seconds": round(r.fit_seconds, 3),
                "rows": dg.MetadataValue.json(r.rows),
                "mlflow_runs": dg.MetadataValue.json(r.runs),
                "relationships": _md_table(
                    [
                        {
                            "child": x.child,
                            "foreign_key": x.child_column,
                            "parent": x.parent,
                            "parent_key": x.parent_column,
                            "kept": "real keys (reference data)" if x.reference else "re-keyed",
                            "orphans": "as in the real data" if x.orphans else "none",
                        }  # fmt: skip
                        for x in group.checked_relationships
                    ]
                ),
                "sdv_multi_table_metadata": dg.MetadataValue.json(r.sdv_metadata),
            }
        )

    @dg.multi_asset(
        name=f"{slug}_group_synthetic",
        specs=[
            dg.AssetSpec(
                f"{t}_synthetic",
                deps=[synth_key],
                group_name=dagster_group,
                kinds={"parquet"},
                tags={**tags, "synth_platform/table": t},
                metadata={"dagster/column_schema": column_schema(models[t])},
                code_version=refresh.asset_code_version(models[t]),
                automation_condition=wiring.automation,
                description=f"Seeded synthetic `{t}` sampled with its group `{group.name}`: "
                "every foreign key points at a synthetic parent row. Private until every "
                "blocking check of the group passes.",
            )  # fmt: skip
            for t in group.tables
        ],
        can_subset=False,
        op_tags=priority("synthetic"),
    )
    def synthetic(context: dg.AssetExecutionContext, synth: SynthHomeResource):
        from synth_platform.lib import group as G

        out = G.sample_group(
            home=synth.home.ensure(), group=group, models=models, progress=context.log.info
        )
        for t in group.tables:
            yield dg.MaterializeResult(
                asset_key=f"{t}_synthetic", metadata=candidate_metadata(models[t], out[t])
            )

    assets += [synthesizer, synthetic]
    for t in group.tables:
        checks += gate_checks(models[t])
    for t in plan.children(group):
        for kind in plan.GROUP_GATE_KINDS:
            checks.append(_group_check(group, models, t, kind))

    @dg.multi_asset(
        name=f"{slug}_group_published",
        specs=[
            dg.AssetSpec(
                f"{t}_published",
                deps=[dg.AssetKey(f"{x}_synthetic") for x in group.tables],
                group_name=dagster_group,
                kinds={"parquet", "duckdb"},
                tags={**tags, "synth_platform/table": t},
                metadata={"dagster/column_schema": column_schema(models[t])},
                code_version=refresh.asset_code_version(models[t]),
                automation_condition=wiring.automation,
                description=f"Published synthetic `{t}`, released together with the rest of "
                f"group `{group.name}` in one atomic commit, only when every blocking check of "
                "every table of the group passed.",
            )  # fmt: skip
            for t in group.tables
        ],
        can_subset=False,
        op_tags=priority("published"),
    )
    def published(synth: SynthHomeResource, synth_mlflow: MlflowResource):
        from synth_platform.lib import group as G

        releases = G.publish_group_tables(
            home=synth.home.ensure(), group=group, models=models, keep=synth.keep_releases
        )
        for t in group.tables:
            release = releases[t]
            yield dg.MaterializeResult(
                asset_key=f"{t}_published",
                metadata={
                    **release_metadata(synth, synth_mlflow, models[t], release),
                    "release_set": release.manifest.get("release_set", ""),
                    "group": group.name,
                },
                data_version=dg.DataVersion(release.version),
            )

    assets.append(published)
    return assets, checks


def _group_check(
    group: TableGroup, models: Mapping[str, ModelSpec], table: str, kind: str
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(f"{table}_synthetic"), name=f"{table}_{kind}", blocking=True,
        description=plan.GROUP_GATE_DESCRIPTIONS[kind], op_tags=priority(kind),
    )  # fmt: skip
    def check(synth: SynthHomeResource, synth_mlflow: MlflowResource) -> dg.AssetCheckResult:
        from synth_platform.lib import group as G

        r = G.evaluate_group_gate(
            home=synth.home.ensure(), group=group, models=models, table=table, kind=kind,
            expectations_dir=synth.suites, tracking_uri=synth_mlflow.tracking_uri,
        )  # fmt: skip
        metadata = {
            "score": dg.MetadataValue.float(r.score),
            "threshold": dg.MetadataValue.float(r.threshold if r.threshold is not None else 0),
            **{k: v for k, v in r.metrics.items() if isinstance(v, int | float)},
            "relationships": _md_table(r.relationships),
            "suite": dg.MetadataValue.path(r.suite_path),
            "candidates": dg.MetadataValue.json(r.candidates),
        }
        if r.report_uri:
            metadata.update(
                mlflow_links(
                    synth_mlflow,
                    r.run_id,
                    artifact=f"group/{table}.{kind}.json",
                    name="full_result",
                )
            )
        if r.failures:
            metadata["failures"] = dg.MetadataValue.md("\n".join(f"- {f}" for f in r.failures))
        return dg.AssetCheckResult(
            passed=r.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=f"{kind}: {r.score:.4g} vs threshold {r.threshold}"
            + ("" if r.passed else f" — FAILED: {'; '.join(r.failures[:3])}"),
        )

    return check
