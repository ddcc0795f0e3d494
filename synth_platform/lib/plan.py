"""The shape of the refresh, from the opted-in models alone: which tables are synthesized as a
group, in what order, along which keys, and which blocking gates each table gets.

The Dagster definitions are built from this module, so it stays import-light (no pandas, numpy,
MLflow, SDV or Great Expectations): loading a code location, or the definitions again in each
step process of the multiprocess executor, does not pay for the libraries the steps use.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from synth_platform.lib.errors import SpecError
from synth_platform.lib.identifiers import safe_identifier
from synth_platform.lib.specs import ModelSpec

GateKind = Literal["fidelity", "privacy", "validity"]
GATE_KINDS: tuple[GateKind, ...] = ("fidelity", "privacy", "validity")
"""Blocking gates of every table, one Great Expectations suite (or more) each."""

GROUP_GATE_KINDS: tuple[str, ...] = ("integrity", "cardinality", "cross_table")
"""Blocking gates of a child table in a group, one Great Expectations suite each."""

GROUP_GATE_DESCRIPTIONS = {
    "integrity": "Referential integrity: every synthetic foreign key of this table points at a "
    "row of its synthetic parent (100%), and parent keys are unique. Blocks the group.",
    "cardinality": "Children per parent: 1 - KS between the real and synthetic "
    "distributions of children per parent row, per foreign key (SDMetrics' "
    "CardinalityShapeSimilarity); for a key into a reference table, 1 - TVD of each "
    "reference row's share of children where that test has the lower noise floor on the real "
    "data (few, well-used parents). Blocks the group below the threshold.",
    "cross_table": "Column Pair Trends across each foreign key's join (child x parent "
    "columns), over the pairs whose real data shows a trend. Blocks the group below the "
    "threshold.",
}


@dataclass(frozen=True)
class Relationship:
    """A foreign key: ``child.child_column`` references ``parent.parent_column``."""

    child: str
    child_column: str
    parent: str
    parent_column: str
    #: The parent is public reference data (`mode: reference`), published as it is: the child
    #: keeps its real key values (modelled like a category) instead of being re-keyed.
    reference: bool = False
    #: Real keys may point at no parent (dbt's test at `severity: warn`): the synthetic share
    #: of such orphans follows the real one instead of being 0.
    orphans: bool = False

    @property
    def key(self) -> str:
        """Stable label, used as the key of every per-relationship result."""
        return f"{self.child}.{self.child_column}->{self.parent}.{self.parent_column}"


@dataclass(frozen=True)
class TableGroup:
    """Related tables synthesized together.

    Attributes:
        name: The group's name: its root tables (those without a parent), joined by ``+``.
        tables: Every table of the group in topological order (parents before children; ties
            broken by name, so the order is deterministic).
        relationships: The group's foreign keys, ordered by the child's position in ``tables``
            and then by column.
    """

    name: str
    tables: tuple[str, ...]
    relationships: tuple[Relationship, ...]
    #: Foreign keys of the group's tables into reference tables (outside the group): kept as
    #: real values, checked by the group gates like the others.
    references: tuple[Relationship, ...] = ()

    @property
    def checked_relationships(self) -> tuple[Relationship, ...]:
        """Every foreign key the group gates check: inside the group, then into references."""
        return self.relationships + self.references

    @property
    def roots(self) -> tuple[str, ...]:
        """Tables without a parent inside the group."""
        children = {r.child for r in self.relationships}
        return tuple(t for t in self.tables if t not in children)

    @property
    def depth(self) -> int:
        """Longest parent -> child chain, counted in tables (SDV's definition: 1 = no link)."""
        depth = {t: 1 for t in self.tables}
        for table in self.tables:  # topological order: parents are final before children
            for r in self.relationships:
                if r.child == table and r.parent != table:
                    depth[table] = max(depth[table], depth[r.parent] + 1)
        return max(depth.values(), default=0)

    @property
    def label(self) -> str:
        """A readable one-table name for the group: its root when it has one, else its fact
        table (the one table no other table references: `flights` in a star schema of
        `airlines`, `airports`, `planes` and `flights`), else its roots joined by ``_``."""
        if len(self.roots) == 1:
            return self.roots[0]
        parents = {r.parent for r in self.relationships}
        sinks = [t for t in self.tables if t not in parents]
        return sinks[0] if len(sinks) == 1 else "_".join(self.roots)

    def key_columns(self, table: str) -> frozenset[str]:
        """Columns of ``table`` that are keys within the group (referenced or referencing)."""
        keys = {r.child_column for r in self.relationships if r.child == table}
        keys |= {r.parent_column for r in self.relationships if r.parent == table}
        return frozenset(keys)


def groups_from_specs(
    models: Sequence[ModelSpec], *, include_single: bool = False
) -> list[TableGroup]:
    """Group opted-in models into connected components linked by dbt ``relationships`` tests.

    Args:
        models: Every opted-in model (``specs_from_manifest``).
        include_single: Also return one-table groups for models without relationships
            (default: only groups of two or more tables, since single tables keep the
            single-table path).

    Returns:
        Groups sorted by name; tables in topological order (parents first).

    Raises:
        SpecError: A relationship references a model that is not opted in (the message names
            both models and how to fix it), references a column other than the parent's primary
            key, or the relationships form a cycle (the message names the models on it).
    """
    by_name = {m.name: m for m in models}
    edges: list[Relationship] = []
    references: list[Relationship] = []
    for model in sorted(models, key=lambda m: m.name):
        for column, parent, parent_column in model.foreign_keys:
            if parent not in by_name:
                raise SpecError(
                    model=model.name,
                    field="relationships",
                    problem=(
                        f"column '{column}' references dbt model '{parent}' (dbt `relationships` "
                        f"test), but '{parent}' is not opted in, so synthetic '{model.name}' rows "
                        f"would point at nothing. Opt '{parent}' in (add a `config.meta.synthetic`"
                        f" block to it), or set `meta.synthetic.relationships: []` on "
                        f"'{model.name}' to synthesize it without the relationship"
                    ),
                )
            pk = by_name[parent].primary_key
            parent_column = parent_column or pk or "(primary key)"
            if pk != parent_column:
                raise SpecError(
                    model=parent,
                    field="primary_key",
                    problem=(
                        f"'{model.name}.{column}' references '{parent}.{parent_column}', but the "
                        f"primary key of '{parent}' is "
                        f"{repr(pk) if pk else 'unknown (no single unique+not_null column)'}; "
                        f"a relationship must reference the parent's primary key. Set "
                        f"`meta.synthetic.primary_key: {parent_column}` on '{parent}' or fix the "
                        f"`relationships` test on '{model.name}.{column}'"
                    ),
                )
            reference = by_name[parent].is_reference
            if model.is_reference and not reference:
                raise SpecError(
                    model=model.name,
                    field="mode",
                    problem=(
                        f"reference table '{model.name}' is published as it is, but its column "
                        f"'{column}' references '{parent}', which is synthesized: its real keys "
                        f"would point at rows that are not published. Declare '{parent}' "
                        f"`mode: reference` too, or synthesize '{model.name}'"
                    ),
                )
            rel = Relationship(
                model.name, column, parent, parent_column, reference=reference,
                orphans=model.orphans_allowed(column),
            )  # fmt: skip
            if reference:
                if not model.is_reference:  # between two reference tables: nothing to check
                    references.append(rel)
            else:
                edges.append(rel)

    cycle = _find_cycle(sorted(by_name), edges)
    if cycle:
        path = " -> ".join([*cycle, cycle[0]])
        raise SpecError(
            model=cycle[0],
            field="relationships",
            problem=(
                f"the dbt `relationships` tests form a cycle between models {cycle} ({path}, "
                "child -> parent); synthetic tables need a parent-first order. Set "
                "`meta.synthetic.relationships` on one of these models to drop the foreign key "
                "that closes the cycle"
            ),
        )

    # Connected components (undirected), then a deterministic topological order in each.
    root_of = {name: name for name in by_name}

    def find(x: str) -> str:
        while root_of[x] != x:
            root_of[x] = root_of[root_of[x]]
            x = root_of[x]
        return x

    for e in edges:
        a, b = find(e.child), find(e.parent)
        if a != b:
            root_of[max(a, b)] = min(a, b)
    members: dict[str, list[str]] = defaultdict(list)
    for name in sorted(by_name):
        members[find(name)].append(name)

    groups = []
    for tables in members.values():
        refs = tuple(r for r in references if r.child in tables)
        if len(tables) < 2 and not include_single and not refs:
            continue  # a table on its own keeps the single-table path
        rels = [e for e in edges if e.child in tables]
        order = _topological(tables, rels)
        position = {t: i for i, t in enumerate(order)}
        rels.sort(key=lambda r: (position[r.child], r.child_column, position[r.parent]))
        children = {r.child for r in rels}
        name = "+".join(t for t in order if t not in children)
        groups.append(
            TableGroup(name=name, tables=tuple(order), relationships=tuple(rels), references=refs)
        )
    return sorted(groups, key=lambda g: g.name)


def _topological(tables: Sequence[str], rels: Sequence[Relationship]) -> list[str]:
    """Kahn's algorithm with a name-ordered heap (acyclic input)."""
    indegree = {t: 0 for t in tables}
    children: dict[str, set[str]] = defaultdict(set)
    for r in rels:
        if r.child not in children[r.parent]:
            children[r.parent].add(r.child)
            indegree[r.child] += 1
    heap = [t for t, d in indegree.items() if d == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        table = heapq.heappop(heap)
        order.append(table)
        for child in sorted(children[table]):
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, child)
    return order


def _find_cycle(tables: Sequence[str], rels: Sequence[Relationship]) -> list[str] | None:
    """One cycle (child -> parent order) of the reference graph, or ``None``."""
    parents: dict[str, list[str]] = defaultdict(list)
    for r in rels:
        parents[r.child].append(r.parent)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for parent in sorted(set(parents[node])):
            if state.get(parent) == 1:
                return stack[stack.index(parent) :]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for table in tables:
        if table not in state:
            found = visit(table)
            if found:
                return found
    return None


@dataclass(frozen=True)
class ParentKey:
    """A foreign key of a table into its parent in the same synthesis group."""

    column: str
    parent: str
    parent_column: str


def group_slug(group: TableGroup) -> str:
    """File- and asset-safe name of a group: its :attr:`TableGroup.label`."""
    return safe_identifier(group.label, what="group")


def parent_keys(group: TableGroup, table: str) -> tuple[ParentKey, ...]:
    """The foreign keys of ``table`` inside ``group`` (for :func:`lifecycle.split_table`)."""
    return tuple(
        ParentKey(r.child_column, r.parent, r.parent_column)
        for r in group.relationships
        if r.child == table
    )


def reference_keys(group: TableGroup, table: str) -> tuple[str, ...]:
    """Columns of ``table`` referencing a reference table (real values, kept as they are)."""
    return tuple(dict.fromkeys(r.child_column for r in group.references if r.child == table))


def children(group: TableGroup) -> tuple[str, ...]:
    """Tables of the group that reference a parent (those carrying the group gates)."""
    return tuple(t for t in group.tables if any(r.child == t for r in group.checked_relationships))
