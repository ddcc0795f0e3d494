"""Synthetic key values in the real keys' format, never equal to a real key.

A synthetic table's primary key (and an orphan foreign key, which points at no parent) is not
learned from the data: it is made up. Made up as ``0, 1, 2...`` it reuses the real ids of a table
keyed ``1..n`` and tells a consumer nothing; made up as ``sdv-id-...`` it no longer reads like the
real codes (`JFK`, `N14228`). :class:`KeyFormat` learns the shape of the real keys and draws
fresh ones of the same shape:

* **integers**: distinct integers in the real keys' range, extended upwards by its own width
  (``[min, max + (max - min + 1)]``) so there is room beside the real values, none of them real;
* **UUIDs**: random (version 4) UUIDs, in the real keys' case;
* **codes**: each real key is read as a *pattern* of character classes (digit, upper-case
  letter, lower-case letter, anything else kept literally), e.g. ``N14228 -> Uddddd``; a
  synthetic key picks a pattern as often as the real keys use it and fills each position from
  the characters real keys of that class use there: one character shared by at least
  :data:`MIN_SUPPORT` keys is kept (the ``N`` of a tail number); with enough keys (4 per
  character of the class) the characters seen (a tail number's first digit is never 0);
  otherwise the whole class. Same lengths, same alphabets, same fixed prefixes.

Draws are seeded (the same real keys, count and seed give the same keys), distinct, never in
``forbidden`` (the real keys, and any key already taken). When a format has fewer free values
than needed (every 2-letter code is real, say) the codes grow by digits at the end, and the
result says so (:attr:`Keys.widened`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["MIN_SUPPORT", "KeyFormat", "Keys"]

MIN_SUPPORT = 5
"""Real keys of a pattern that must share a character before it is kept as a literal."""

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _class_of(ch: str) -> str:
    if ch in _DIGITS:
        return "d"
    if ch in _UPPER:
        return "U"
    if ch in _LOWER:
        return "l"
    return "="  # any other character stays literally where it is


@dataclass(frozen=True)
class _Pattern:
    """One pattern of codes: per position, the characters it may take."""

    weight: int
    alphabets: tuple[str, ...]

    @property
    def capacity(self) -> float:
        out = 1.0
        for a in self.alphabets:
            out *= len(a)
        return out


@dataclass(frozen=True)
class Keys:
    """Drawn keys (an array of the real keys' kind) and whether the format had to widen."""

    values: np.ndarray
    widened: bool = False


@dataclass(frozen=True)
class KeyFormat:
    """The format of a key column, learned from its real values (:meth:`learn`)."""

    kind: str  # "int", "uuid" or "code"
    low: int = 0
    high: int = 0
    upper_case: bool = False
    patterns: tuple[_Pattern, ...] = field(default_factory=tuple)

    @staticmethod
    def learn(real: Iterable[object] | pd.Series) -> KeyFormat:
        """The format of the non-missing values of ``real`` (an empty column: integers)."""
        values = pd.Series(real).dropna()
        if values.empty:
            return KeyFormat(kind="int", low=1, high=1)
        if pd.api.types.is_integer_dtype(values) or (
            pd.api.types.is_float_dtype(values) and bool((values == values.round()).all())
        ):
            ints = values.astype(np.int64)
            return KeyFormat(kind="int", low=int(ints.min()), high=int(ints.max()))
        text = values.astype(str)
        if text.map(lambda s: bool(_UUID.match(s))).all():
            return KeyFormat(kind="uuid", upper_case=bool(text.str.contains("[A-F]").any()))
        return KeyFormat(kind="code", patterns=_patterns(text.tolist()))

    def generate(self, n: int, *, seed: int, forbidden: Collection[object] = ()) -> Keys:
        """``n`` distinct keys of this format, none in ``forbidden``."""
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6B6579]))
        if self.kind == "int":
            return _integers(n, self.low, self.high, forbidden, rng)
        if self.kind == "uuid":
            taken = {str(v).lower() for v in forbidden}
            out: list[str] = []
            while len(out) < n:
                raw = rng.integers(0, 256, size=(n - len(out), 16), dtype=np.uint8)
                raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
                raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
                for row in raw:
                    h = row.tobytes().hex()
                    u = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                    if u not in taken:
                        taken.add(u)
                        out.append(u.upper() if self.upper_case else u)
            return Keys(np.array(out, dtype=object))
        return _codes(
            n,
            self.patterns,
            pd.Index(pd.Series(forbidden, dtype=object).dropna().astype(str).unique()),
            rng,
        )


def _patterns(keys: list[str]) -> tuple[_Pattern, ...]:
    """Patterns of ``keys`` with, per position, the characters real keys of the same class
    use at that position (pooled over patterns, so a rare pattern still starts with `N`)."""
    by_pattern: Counter[str] = Counter()
    used: dict[tuple[int, str], Counter[str]] = {}
    for k in keys:
        classes = [_class_of(c) for c in k]
        by_pattern[
            "".join(c if c != "=" else f"={ch}" for c, ch in zip(classes, k, strict=True))
        ] += 1
        for i, (c, ch) in enumerate(zip(classes, k, strict=True)):
            used.setdefault((i, c), Counter())[ch] += 1
    out = []
    for pattern, weight in by_pattern.items():
        alphabets, i, j = [], 0, 0
        while j < len(pattern):
            c = pattern[j]
            if c == "=":
                alphabets.append(pattern[j + 1])  # punctuation stays where it is
                j += 2
            else:
                chars, full = used[(i, c)], {"d": _DIGITS, "U": _UPPER, "l": _LOWER}[c]
                support = sum(chars.values())
                if len(chars) == 1 and support >= MIN_SUPPORT:
                    alphabets.append(next(iter(chars)))  # a fixed character: tail numbers' `N`
                elif support >= 4 * len(full):
                    alphabets.append("".join(sorted(chars)))  # enough keys to know the range
                else:
                    alphabets.append(full)  # too few keys to tell: the whole class
                j += 1
            i += 1
        out.append(_Pattern(weight=weight, alphabets=tuple(alphabets)))
    return tuple(sorted(out, key=lambda p: (-p.weight, p.alphabets)))


#: Integer keys are drawn against a mask of the free integers when their range has at most
#: this many (or 8 per key): 16 MB.
_MASK_MAX = 16_000_000


def _integers(
    n: int, low: int, high: int, forbidden: Collection[object], rng: np.random.Generator
) -> Keys:
    values = pd.Series(
        forbidden if isinstance(forbidden, np.ndarray | pd.Series) else list(forbidden)
    )
    if not pd.api.types.is_numeric_dtype(values):
        values = pd.to_numeric(values, errors="coerce")
    # Sorted distinct (np.unique's hash table took 0.57 s for 1M keys, pd.unique 0.02 s).
    taken = np.sort(pd.unique(values.dropna().to_numpy(dtype=np.float64).astype(np.int64)))
    width = high - low + 1
    top = high + max(width, n + len(taken))
    widened = False
    while (top - low + 1) - int(((taken >= low) & (taken <= top)).sum()) < 2 * n:
        top += top - low + 1  # too few free integers: double the range
        widened = True
    # Which integers of [low, top] are free, as a mask when that is not much larger than the
    # keys (the same draws are kept as by `np.isin` against the taken and drawn keys, a sort
    # each round: 0.87 s for 1M keys among 1M real ones, 0.2 s with the mask).
    span = top - low + 1
    free = None
    if span <= max(_MASK_MAX, 8 * (n + len(taken))):
        free = np.ones(span, dtype=bool)
        free[taken[(taken >= low) & (taken <= top)] - low] = False
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        draw = rng.integers(low, top, size=2 * (n - len(out)) + 16, endpoint=True)
        draw = pd.unique(draw)
        if free is not None:
            draw = draw[free[draw - low]][: n - len(out)]
            free[draw - low] = False
        else:
            draw = draw[~np.isin(draw, taken) & ~np.isin(draw, out)][: n - len(out)]
        out = np.concatenate([out, draw])
    return Keys(np.sort(out), widened)


def _codes(
    n: int, patterns: tuple[_Pattern, ...], seen: pd.Index, rng: np.random.Generator
) -> Keys:
    if sum(max(p.capacity - p.weight, 0.0) for p in patterns) < 2 * n:
        # Too few codes of these shapes: add digits at the end of every pattern.
        extra = max(1, int(np.ceil(np.log10(2 * n + 1))))
        patterns = tuple(_Pattern(p.weight, (*p.alphabets, *[_DIGITS] * extra)) for p in patterns)
        widened = True
    else:
        widened = False
    # Per pattern: its real share of the keys, but at most half its free codes (the rest go to
    # patterns with room), so that rejection sampling needs few rounds.
    room = np.array([max(p.capacity - p.weight, 0.0) / 2 for p in patterns])
    share = np.array([p.weight for p in patterns], dtype=float)
    want = np.zeros(len(patterns))
    left = float(n)
    while left > 0.5:
        open_ = want < room
        w = np.where(open_, share, 0.0)
        add = np.minimum(room - want, left * w / w.sum())
        want += add
        left -= add.sum()
    counts = np.floor(want).astype(np.int64)
    counts[np.argmax(room - counts)] += n - int(counts.sum())
    parts = []
    for p, k in zip(patterns, counts, strict=True):
        got = np.empty(0, dtype=object)
        rounds = 0
        while len(got) < k:
            rounds += 1
            if rounds > 64:
                raise ValueError(f"cannot draw {n} distinct keys of the real keys' format")
            m = 2 * (k - len(got)) + 8
            chars = [
                np.array(list(a), dtype="<U1")[rng.integers(0, len(a), size=m)] for a in p.alphabets
            ]
            drawn = pd.unique(
                np.stack(chars, axis=1).view(f"<U{len(p.alphabets)}").ravel().astype(object)
            )
            drawn = drawn[~pd.Index(drawn).isin(seen) & ~pd.Index(drawn).isin(got)]
            got = np.concatenate([got, drawn[: k - len(got)]])
        parts.append(got)
    picked = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    # Sorted as fixed-width text (an object array sorts by Python comparisons: 4 s per 1M).
    return Keys(np.sort(picked.astype(str)).astype(object) if n else picked, widened)
