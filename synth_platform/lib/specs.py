"""Table specs: which dbt models are synthesized, and how.

A data team opts a model in where it already describes it, in the dbt project:

```yaml
models:
  - name: customers
    config:
      meta:
        synthetic:
          synthesizer: cart
          seed: 42
    columns:
      - name: email
        config: {meta: {pii: email}}
```

`TableSpec` validates the `meta.synthetic` block; `specs_from_manifest` reads every opted-in
model from dbt's `manifest.json` together with what dbt already knows about it (keys from
`unique`/`not_null` tests, categories from `accepted_values`, parents from `relationships`,
PII from column meta), so nothing is typed twice.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from synth_platform.lib.errors import SpecError
from synth_platform.lib.identifiers import safe_identifier

SynthesizerName = Literal["cart", "gaussian_copula", "ctgan", "tvae", "copulagan"]
SdType = Literal["numerical", "categorical", "boolean", "datetime", "id"]

Distribution = Literal["norm", "beta", "truncnorm", "gamma", "uniform", "gaussian_kde"]
_PositiveInt = Annotated[StrictInt, Field(ge=1)]
_PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Layers = Annotated[list[_PositiveInt], Field(min_length=1)]
# Omitted parameters keep SDV's defaults: only the keys given are passed on, so the `None`
# defaults below are never used (and an explicit `null` is refused by the types).


class _Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enforce_min_max_values: StrictBool = None  # type: ignore[assignment]
    enforce_rounding: StrictBool = None  # type: ignore[assignment]


class _Locales(_Parameters):
    locales: str | Annotated[list[str], Field(min_length=1)] = None  # type: ignore[assignment]


class _Copula(BaseModel):
    numerical_distributions: dict[str, Distribution] = None  # type: ignore[assignment]
    default_distribution: Distribution = None  # type: ignore[assignment]


class _Neural(BaseModel):
    embedding_dim: _PositiveInt = None  # type: ignore[assignment]
    batch_size: _PositiveInt = None  # type: ignore[assignment]
    epochs: _PositiveInt = None  # type: ignore[assignment]
    verbose: StrictBool = None  # type: ignore[assignment]
    enable_gpu: StrictBool = None  # type: ignore[assignment]


class GaussianCopulaParameters(_Copula, _Locales):
    """`parameters` of `gaussian_copula` (SDV GaussianCopulaSynthesizer)."""


class CTGANParameters(_Neural, _Locales):
    """`parameters` of `ctgan` (SDV CTGANSynthesizer)."""

    generator_dim: _Layers = None  # type: ignore[assignment]
    discriminator_dim: _Layers = None  # type: ignore[assignment]
    generator_lr: _PositiveFloat = None  # type: ignore[assignment]
    generator_decay: _NonNegativeFloat = None  # type: ignore[assignment]
    discriminator_lr: _PositiveFloat = None  # type: ignore[assignment]
    discriminator_decay: _NonNegativeFloat = None  # type: ignore[assignment]
    discriminator_steps: _PositiveInt = None  # type: ignore[assignment]
    log_frequency: StrictBool = None  # type: ignore[assignment]
    pac: _PositiveInt = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _batches(self) -> CTGANParameters:
        # CTGAN asserts an even batch, and its discriminator packs `pac` rows per sample.
        batch = self.batch_size if self.batch_size is not None else 500
        pac = self.pac if self.pac is not None else 10
        if batch % 2 or batch % pac:
            raise ValueError(f"must be even and a multiple of `pac` ({pac}), got {batch}")
        return self


class CopulaGANParameters(_Copula, CTGANParameters):
    """`parameters` of `copulagan` (SDV CopulaGANSynthesizer)."""


class TVAEParameters(_Neural, _Parameters):
    """`parameters` of `tvae` (SDV TVAESynthesizer)."""

    compress_dims: _Layers = None  # type: ignore[assignment]
    decompress_dims: _Layers = None  # type: ignore[assignment]
    l2scale: _NonNegativeFloat = None  # type: ignore[assignment]
    loss_factor: _PositiveFloat = None  # type: ignore[assignment]


class CartParameters(BaseModel):
    """`parameters` of `cart` (sequential CART, :mod:`synth_platform.lib.cart`)."""

    model_config = ConfigDict(extra="forbid")

    min_samples_leaf: _PositiveInt = None  # type: ignore[assignment]
    smoothing: StrictBool = None  # type: ignore[assignment]
    visit_order: Annotated[list[str], Field(min_length=1)] = None  # type: ignore[assignment]
    max_predictors: _PositiveInt = None  # type: ignore[assignment]


PARAMETER_MODELS: dict[str, type[BaseModel]] = {
    "cart": CartParameters,
    "gaussian_copula": GaussianCopulaParameters,
    "ctgan": CTGANParameters,
    "copulagan": CopulaGANParameters,
    "tvae": TVAEParameters,
}
#: Constructor parameters each synthesizer accepts (a unit test keeps this in step with SDV).
SYNTHESIZER_PARAMETERS: dict[str, frozenset[str]] = {
    name: frozenset(m.model_fields) for name, m in PARAMETER_MODELS.items()
}


class ParameterError(ValueError):
    """A synthesizer parameter is unknown or out of range (``field``: its name)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def validate_parameters(synthesizer: str, parameters: Mapping[str, Any]) -> None:
    """Check names, types and ranges of a synthesizer's `parameters` before any training.

    Raises:
        ParameterError: naming the parameter, the synthesizer and what is allowed.
    """
    allowed = SYNTHESIZER_PARAMETERS[synthesizer]
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        raise ParameterError(
            str(unknown[0]),
            f"unknown parameter(s) {unknown} for synthesizer '{synthesizer}'; "
            f"allowed: {sorted(allowed)}",
        )
    try:
        PARAMETER_MODELS[synthesizer].model_validate(dict(parameters))
    except ValidationError as exc:
        err = exc.errors()[0]
        # A model-level error is the batch rule (the only cross-field check).
        name = ".".join(str(p) for p in err["loc"]) or "batch_size"
        shown = f", got {parameters.get(str(err['loc'][0]))!r}" if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ParameterError(name, f"{synthesizer} parameter `{name}`: {msg}{shown}") from None


def check_column_parameters(
    *,
    model: str,
    spec: TableSpec,
    numerical: Collection[str],
    modelled: Collection[str] | None = None,
) -> None:
    """Parameters that name columns must name columns they apply to (checked with the
    table's metadata, before training): `numerical_distributions` numerical columns,
    `visit_order` modelled columns (not keys, PII or excluded columns).

    Raises:
        SpecError: naming the model, the parameter and the columns allowed.
    """
    named = spec.parameters.get("numerical_distributions") or {}
    wrong = sorted(set(named) - set(numerical))
    if wrong:
        raise SpecError(
            model=model,
            field=f"parameters.numerical_distributions.{wrong[0]}",
            problem=f"column(s) {wrong} are not numerical columns of the table "
            f"(numerical: {sorted(numerical)})",
        )
    order = spec.parameters.get("visit_order") or []
    if modelled is not None:
        wrong = [c for c in order if c not in modelled]
        if wrong:
            raise SpecError(
                model=model,
                field="parameters.visit_order",
                problem=f"column(s) {wrong} are not modelled columns of the table "
                f"(modelled: {sorted(modelled)})",
            )
    if len(set(order)) != len(order):
        raise SpecError(
            model=model, field="parameters.visit_order", problem="a column is listed twice"
        )


#: Faker providers accepted as PII generators (column meta `pii: <provider>`).
PII_PROVIDERS = frozenset(
    {
        "name", "first_name", "last_name", "email", "safe_email", "phone_number", "ssn",
        "street_address", "address", "city", "postcode", "iban", "credit_card_number",
        "date_of_birth", "user_name", "ipv4", "company", "license_plate", "uuid4",
    }
)  # fmt: skip


class Thresholds(BaseModel):
    """Gate thresholds. A candidate is published only if every one holds."""

    model_config = ConfigDict(extra="forbid")

    fidelity: float = Field(0.80, ge=0, le=1, description="Minimum overall quality score.")
    column_shapes: float | None = Field(None, ge=0, le=1, description="Minimum Column Shapes.")
    column_pair_trends: float | None = Field(
        None, ge=0, le=1, description="Minimum Column Pair Trends."
    )
    worst_column: float = Field(
        0.50, ge=0, le=1, description="Minimum shape score of any single column."
    )
    dcr_share: float = Field(
        0.60,
        gt=0.5,
        le=1,
        description="Maximum share of synthetic rows closer to training than to holdout rows.",
    )
    exact_copies: int = Field(
        0,
        ge=0,
        description="Maximum synthetic rows equal to a training row whose combination of "
        "values fewer than 5 training rows share (copies of rarer rows; a combination 5+ rows "
        "share is k-anonymous and reported as `common_copies_train`).",
    )
    near_copies: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Maximum excess share of synthetic rows sitting on a training row (within "
        "a 1e-4 mean column distance, against all training rows) over the share of holdout "
        "rows that do. Reported by default: on coarse columns (integers, dates on a grid) "
        "honest draws land on training values more often than holdout rows do.",
    )
    exact_copies_holdout: int | None = Field(
        None,
        ge=0,
        description="Maximum synthetic rows equal to a holdout row (reported; gated when set).",
    )
    nndr: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="Minimum median nearest/second-nearest training distance ratio "
        "(0 means synthetic rows sit on training rows).",
    )
    baseline_protection: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Minimum DCR baseline protection (SDMetrics DCRBaselineProtection).",
    )
    pii_leaks: int = Field(0, ge=0, description="Maximum output cells holding a source PII value.")
    utility: float | None = Field(
        None,
        ge=0,
        description="Minimum utility ratio (train-on-synthetic / train-on-real score on the "
        "holdout) for tables that declare a `target`.",
    )
    singling_out_risk: float | None = Field(
        None, ge=0, le=1, description="Maximum singling-out risk (attack-based)."
    )
    linkability_risk: float | None = Field(
        None, ge=0, le=1, description="Maximum linkability risk (attack-based)."
    )
    inference_risk: float | None = Field(
        None, ge=0, le=1, description="Maximum inference risk (attack-based)."
    )
    cardinality: float = Field(
        0.80,
        ge=0,
        le=1,
        description="Minimum children-per-parent fidelity (1 - KS) of each foreign key "
        "(multi-table groups; set on the child).",
    )
    cross_table_trends: float = Field(
        0.70,
        ge=0,
        le=1,
        description="Minimum Column Pair Trends across each foreign key's join, over the pairs "
        "whose real data shows a trend (multi-table groups; set on the child).",
    )


class RelationshipSpec(BaseModel):
    """A foreign key declared in `meta.synthetic.relationships` (overrides dbt's tests)."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Foreign-key column of this model.")
    parent: str = Field(description="dbt model it references (must be opted in).")
    parent_column: str | None = Field(
        None, description="Referenced column (default: the parent's primary key)."
    )
    orphans: bool = Field(
        False,
        description="Some real keys point at no parent row (dbt's test at `severity: warn`): "
        "the twin keeps their share instead of resolving every key.",
    )


MultiTableStrategy = Literal["auto", "hma", "independent"]
TableMode = Literal["synthesize", "reference"]


class TableSpec(BaseModel):
    """The `meta.synthetic` block of a dbt model."""

    model_config = ConfigDict(extra="forbid")

    mode: TableMode = Field(
        "synthesize",
        description="`synthesize` (the default) or `reference`: public reference data (carriers, "
        "airports, calendars, product catalogues; no personal data), published as it is, with "
        "the privacy gate replaced by this declaration and a PII scan; tables referencing it "
        "keep its real keys.",
    )
    synthesizer: SynthesizerName = Field(
        "cart",
        description="`cart` (sequential CART, the default) or an SDV synthesizer "
        "(`gaussian_copula`, `ctgan`, `tvae`, `copulagan`).",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Constructor parameters of the synthesizer."
    )
    rows: int | None = Field(None, gt=0, description="Synthetic rows to sample.")
    scale: float | None = Field(None, gt=0, le=1000, description="Rows as a multiple of real.")
    seed: int = Field(0, ge=0, description="Seed of the split, the fit and the sample.")
    holdout: float = Field(0.2, gt=0, le=0.5, description="Share of real rows held out.")
    primary_key: str | None = Field(None, description="Key column (default: from dbt tests).")
    pii: dict[str, str] = Field(
        default_factory=dict, description="PII columns -> Faker provider (adds to column meta)."
    )
    sdtypes: dict[str, SdType] = Field(
        default_factory=dict, description="Override the derived SDV sdtype of columns."
    )
    exclude: list[str] = Field(
        default_factory=list, description="Columns left out of the synthetic table."
    )
    batch_size: int = Field(50_000, gt=0, description="Rows per sampling batch.")
    target: str | None = Field(
        None, description="Column a downstream model predicts; enables the utility score."
    )
    attacks: bool = Field(
        True, description="Run the attack-based privacy risks (bounded sample) in the gate."
    )
    relationships: list[RelationshipSpec] | None = Field(
        None,
        description="Foreign keys of this model. Default: read from dbt `relationships` tests; "
        "a list here replaces them (`[]` synthesizes the model on its own).",
    )
    multi_table: MultiTableStrategy = Field(
        "auto",
        description="Strategy of the model's group: `hma` (SDV HMASynthesizer), `independent` "
        "(per-table synthesizers, children re-keyed to synthetic parents) or `auto` (HMA where "
        "SDV accepts the schema, the group fits the row budget and every table asks for "
        "`gaussian_copula` without `gaussian_kde`; else independent).",
    )
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        synthesizer = info.data.get("synthesizer")
        if synthesizer is not None:
            validate_parameters(synthesizer, value)
        return value

    @model_validator(mode="after")
    def _check(self) -> TableSpec:
        if self.rows is not None and self.scale is not None:
            raise ValueError("set either `rows` or `scale`, not both")
        if self.thresholds.utility is not None and not self.target:
            raise ValueError("`thresholds.utility` needs a `target` column to predict")
        if self.target and (self.target in self.pii or self.target in self.exclude):
            raise ValueError(f"`target` '{self.target}' is a PII or excluded column")
        attack_bounds = ("singling_out_risk", "linkability_risk", "inference_risk")
        if not self.attacks and any(getattr(self.thresholds, f) is not None for f in attack_bounds):
            raise ValueError("attack risk thresholds need `attacks: true`")
        for r in self.relationships or ():
            if r.column in self.pii or r.column in self.exclude:
                raise ValueError(f"relationship column '{r.column}' is a PII or excluded column")
        if self.mode == "reference" and self.pii:
            raise ValueError(
                f"a `mode: reference` table is published as it is and must hold no personal "
                f"data, but `pii` declares {sorted(self.pii)}; exclude those columns "
                "(`exclude`) or synthesize the table"
            )
        bad = {c: p for c, p in self.pii.items() if p not in PII_PROVIDERS}
        if bad:
            raise ValueError(f"unknown PII provider(s) {bad}; allowed: {sorted(PII_PROVIDERS)}")
        return self

    def sample_rows(self, real_rows: int) -> int:
        """Number of synthetic rows to sample for a real table of `real_rows` rows."""
        if self.rows is not None:
            return self.rows
        return max(1, round(real_rows * (self.scale if self.scale is not None else 1.0)))


def parse_spec(*, model: str, block: Mapping[str, Any] | None) -> TableSpec:
    """Validate one `meta.synthetic` block; errors name the model and the field."""
    if block is None or block is True:
        block = {}
    if not isinstance(block, Mapping):
        raise SpecError(model=model, field="", problem=f"expected a mapping, got {block!r}")
    try:
        return TableSpec.model_validate(dict(block))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(block)"
        problem = err["msg"]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ParameterError):
            loc, problem = f"parameters.{cause.field}".rstrip("."), str(cause)
        raise SpecError(model=model, field=loc, problem=problem) from None


@dataclass(frozen=True)
class ColumnInfo:
    """What dbt knows about a column."""

    name: str
    description: str = ""
    data_type: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """An opted-in dbt model with its validated spec and what dbt tests declare about it."""

    name: str
    unique_id: str
    relation: str  # [database.]schema.table in the warehouse
    spec: TableSpec
    columns: Mapping[str, ColumnInfo]
    unique_columns: frozenset[str] = frozenset()
    not_null_columns: frozenset[str] = frozenset()
    accepted_values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    relationships: tuple[tuple[str, str, str], ...] = ()  # (column, parent model, parent col)
    #: Foreign-key columns whose dbt `relationships` test is `severity: warn` (real orphans).
    warn_relationships: frozenset[str] = frozenset()

    @property
    def foreign_keys(self) -> tuple[tuple[str, str, str | None], ...]:
        """``(column, parent model, parent column or None for its key)`` per foreign key:
        `meta.synthetic.relationships` when set, else dbt's `relationships` tests."""
        if self.spec.relationships is not None:
            return tuple((r.column, r.parent, r.parent_column) for r in self.spec.relationships)
        return tuple(dict.fromkeys(self.relationships))  # dbt may declare a test twice

    def orphans_allowed(self, column: str) -> bool:
        """Whether real ``column`` values may point at no parent row: its dbt `relationships`
        test is at `severity: warn`, or `meta.synthetic.relationships` says `orphans: true`."""
        if self.spec.relationships is not None:
            return any(r.column == column and r.orphans for r in self.spec.relationships)
        return column in self.warn_relationships

    @property
    def is_reference(self) -> bool:
        """Declared public reference data (`mode: reference`): published as it is."""
        return self.spec.mode == "reference"

    @property
    def primary_key(self) -> str | None:
        """Explicit `primary_key`, else the single non-PII column tested unique and not_null.

        PII columns (a unique national id, say) are faked rather than keyed, so they never
        compete with the real key.
        """
        if self.spec.primary_key:
            return self.spec.primary_key
        keys = sorted((self.unique_columns & self.not_null_columns) - set(self.pii))
        return keys[0] if len(keys) == 1 else None

    @property
    def pii(self) -> dict[str, str]:
        """PII columns -> Faker provider, from column meta `pii:` and the spec's `pii`."""
        found = {}
        for col in self.columns.values():
            provider = col.meta.get("pii")
            if provider:
                found[col.name] = provider if isinstance(provider, str) else "name"
        found.update(self.spec.pii)
        return found


def _column_meta(col: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(col.get("meta") or {})
    meta.update((col.get("config") or {}).get("meta") or {})
    return meta


def _model_meta(node: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(node.get("meta") or {})
    meta.update((node.get("config") or {}).get("meta") or {})
    return meta


def specs_from_manifest(manifest: Mapping[str, Any]) -> list[ModelSpec]:
    """Every model whose meta has a `synthetic` block, validated, sorted by name.

    Raises:
        SpecError: a block is invalid, or names a column the model does not have.
    """
    nodes = manifest.get("nodes", {})
    tests: dict[str, list[Mapping[str, Any]]] = {}
    for node in nodes.values():
        if node.get("resource_type") == "test" and node.get("test_metadata"):
            attached = node.get("attached_node") or next(
                iter((node.get("depends_on") or {}).get("nodes", [])), None
            )
            if attached:
                tests.setdefault(attached, []).append(node)

    model_names = {uid: n["name"] for uid, n in nodes.items() if n.get("resource_type") == "model"}
    specs: list[ModelSpec] = []
    for uid, node in nodes.items():
        if node.get("resource_type") != "model":
            continue
        meta = _model_meta(node)
        if "synthetic" not in meta:
            continue
        name = node["name"]
        safe_identifier(name, what="dbt model name")
        spec = parse_spec(model=name, block=meta["synthetic"])
        columns = {
            c["name"]: ColumnInfo(
                name=c["name"],
                description=c.get("description") or "",
                data_type=c.get("data_type"),
                meta=_column_meta(c),
            )
            for c in (node.get("columns") or {}).values()
        }
        unique, not_null, accepted, rels, warn = set(), set(), {}, [], set()
        for t in tests.get(uid, []):
            tm = t["test_metadata"]
            col = t.get("column_name") or (tm.get("kwargs") or {}).get("column_name")
            kw = tm.get("kwargs") or {}
            if not col:
                continue
            if tm["name"] == "unique":
                unique.add(col)
            elif tm["name"] == "not_null":
                not_null.add(col)
            elif tm["name"] == "accepted_values":
                accepted[col] = tuple(kw.get("values") or ())
            elif tm["name"] == "relationships":
                parents = [d for d in t.get("depends_on", {}).get("nodes", []) if d != uid]
                parent = model_names.get(parents[0]) if parents else None
                if parent:
                    rels.append((col, parent, str(kw.get("field", col))))
                    if str((t.get("config") or {}).get("severity", "error")).lower() == "warn":
                        warn.add(col)
        spec_cols = (
            ([("primary_key", spec.primary_key)] if spec.primary_key else [])
            + [(f"pii.{c}", c) for c in spec.pii]
            + [(f"sdtypes.{c}", c) for c in spec.sdtypes]
            + ([("target", spec.target)] if spec.target else [])
            + [
                (f"relationships.{i}.column", r.column)
                for i, r in enumerate(spec.relationships or [])
            ]
        )
        if columns:
            for field_name, col in spec_cols:
                if col not in columns:
                    raise SpecError(
                        model=name,
                        field=field_name,
                        problem=f"column '{col}' is not documented in the model's .yml "
                        f"(known: {sorted(columns)})",
                    )
        # `database.schema.alias` as dbt built it; the reader falls back to the default catalog
        # when the warehouse file is opened under another name.
        relation = ".".join(
            p
            for p in (node.get("database"), node.get("schema", "main"), node.get("alias") or name)
            if p
        )
        specs.append(
            ModelSpec(
                name=name,
                unique_id=uid,
                relation=relation,
                spec=spec,
                columns=columns,
                unique_columns=frozenset(unique),
                not_null_columns=frozenset(not_null),
                accepted_values=accepted,
                relationships=tuple(rels),
                warn_relationships=frozenset(warn),
            )
        )
    return sorted(specs, key=lambda s: s.name)


def load_manifest(path: Path) -> dict[str, Any]:
    """Read dbt's `manifest.json`."""
    return json.loads(Path(path).read_text())
