"""Faker's text providers, n values at a time.

Faker draws one value per call, and with its word frequencies (`use_weighting`) each call
accumulates the weights of thousands of names again: 50-150 µs per name, email or address, so
the 67k customers of the million-row example spent 20 s in Faker, more than fitting and sampling
all three tables. :class:`VectorFaker` draws the same providers a column at a time with NumPy:
the same locale data, the same weights, the same formats and digit rules, implemented the way
Faker's base providers implement them. It does so only where the locale's method *is* that base
implementation (checked by identity); any other method (a locale's own logic, a provider with
arguments, `ssn`, `iban`, ...) is called through Faker, once per value, as before.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from faker import Faker
from faker.providers import address, company, internet, person, phone_number
from faker.providers.address import en_US as address_en_US
from faker.utils.text import slugify

#: Faker's token syntax (`faker.generator._re_token`): `{{ name }}` or `{{ name:argument_group }}`.
_TOKEN = re.compile(r"\{\{\s*(\w+)(:\s*\w+?)?\s*\}\}")
#: Faker's numerify/bothify placeholders.
_PLACEHOLDER = re.compile(r"([#%$!@?])")
_DIGITS = np.array(list(string.digits), dtype=object)
_LETTERS = np.array(list(string.ascii_letters), dtype=object)
_SPECIAL = frozenset("#%$!@?")

# How a base provider method draws its value: ("elements", attribute, fallback method) picks
# from a list or weighted dict (or calls the fallback method where the locale has no such
# attribute); ("parse", attribute) expands a weighted format of `{{tokens}}`; ("numerify",
# attribute) replaces the digit placeholders of a format; ("user_name"/"email"/"lower", ...) as
# the internet provider does.
_Shape = tuple[str, str, str | None]
_SHAPES: dict[Callable[..., Any], _Shape] = {
    person.Provider.first_name: ("elements", "first_names", None),
    person.Provider.last_name: ("elements", "last_names", None),
    person.Provider.name: ("parse", "formats", None),
    address.Provider.city_suffix: ("elements", "city_suffixes", None),
    address.Provider.street_suffix: ("elements", "street_suffixes", None),
    address.Provider.building_number: ("numerify", "building_number_formats", None),
    address.Provider.city: ("parse", "city_formats", None),
    address.Provider.street_name: ("parse", "street_name_formats", None),
    address.Provider.street_address: ("parse", "street_address_formats", None),
    address.Provider.address: ("parse", "address_formats", None),
    address_en_US.Provider.city_prefix: ("elements", "city_prefixes", None),
    address_en_US.Provider.secondary_address: ("numerify", "secondary_address_formats", None),
    address_en_US.Provider.administrative_unit: ("elements", "states", None),
    phone_number.Provider.phone_number: ("numerify", "formats", None),
    company.Provider.company: ("parse", "formats", None),
    company.Provider.company_suffix: ("elements", "company_suffixes", None),
    internet.Provider.user_name: ("user_name", "user_name_formats", None),
    internet.Provider.free_email_domain: ("lower", "free_email_domains", None),
    internet.Provider.safe_domain_name: ("lower", "safe_domain_names", None),
    internet.Provider.safe_email: ("email", "safe_domain_name", None),
    internet.Provider.email: ("email", "safe_domain_name", None),  # called without arguments
}
_GENDERED = (("first_name", "first_names"), ("last_name", "last_names"),
             ("prefix", "prefixes"), ("suffix", "suffixes"))  # fmt: skip
for _sex in ("female", "male", "nonbinary"):
    for _part, _attr in _GENDERED:  # e.g. first_name_female: first_names_female or first_name()
        _SHAPES[getattr(person.Provider, f"{_part}_{_sex}")] = (
            "elements",
            f"{_attr}_{_sex}",
            _part,
        )


class VectorFaker:
    """Draw ``n`` values of a Faker provider at once (see the module docstring).

    Reproducible: the values depend on ``seed`` only (NumPy for the vectorised parts, Faker's
    own generator, seeded from it, for the rest)."""

    def __init__(self, locale: str, seed: int) -> None:
        self.fake = Faker(locale)
        self.fake.seed_instance(seed)
        self.rng = np.random.default_rng([seed, 11])
        self._elements: dict[int, tuple[object, np.ndarray, np.ndarray | None]] = {}

    def draw(self, method: str, n: int) -> np.ndarray:
        """``n`` values of ``fake.<method>()`` as an object array of str (or of the method's
        own type where Faker is called per value)."""
        bound = getattr(self.fake, method)
        shape = _SHAPES.get(getattr(bound, "__func__", None))
        owner = getattr(bound, "__self__", None)
        if shape is None or n == 0:
            return self._per_value(bound, n)
        kind, attr, fallback = shape
        if kind == "email":  # user_name() + "@" + safe_domain_name(), lower-cased
            return _lower(self.draw("user_name", n) + "@" + self.draw(attr, n))
        if not hasattr(owner, attr):
            return self.draw(fallback, n) if fallback else self._per_value(bound, n)
        data = getattr(owner, attr)
        if kind == "elements":
            return self._choose(data, n)
        if kind == "lower":
            return _lower(self._choose(data, n))
        if kind == "numerify":
            return self._by_pattern(data, n, lambda p, m: self._numerify(p, m, letters=False))
        if kind == "parse":
            return self._by_pattern(data, n, self._parse)
        # user_name: bothify the parsed text (the format's own placeholders here, any a drawn
        # token brought by Faker), lower-case it, transliterate it to ASCII, slugify it (the
        # method's decorator: dots and other non-word characters go).
        both = self._by_pattern(data, n, lambda p, m: self._parse(p, m, bothify=True))
        to_ascii, done = owner._to_ascii, {}
        for v in dict.fromkeys(both.tolist()):
            done[v] = slugify(to_ascii(v.lower()), allow_unicode=True)
        return np.array([done[v] for v in both], dtype=object)

    # ------------------------------------------------------------------ the three shapes

    def _choose(self, elements: Sequence[str] | Mapping[str, float], n: int) -> np.ndarray:
        """``random_element(elements)`` n times: weighted for a dict (Faker's default
        `use_weighting`), uniform for a sequence."""
        cached = self._elements.get(id(elements))
        if cached is None or cached[0] is not elements:  # (an id is only unique while alive)
            if isinstance(elements, Mapping):
                values = np.array(list(elements.keys()), dtype=object)
                weights = np.asarray(list(elements.values()), dtype=np.float64)
                cumulative = np.cumsum(weights) / weights.sum()
            else:
                values, cumulative = np.array(list(elements), dtype=object), None
            cached = self._elements[id(elements)] = (elements, values, cumulative)
        _, values, cumulative = cached
        if cumulative is None:
            return values[self.rng.integers(0, len(values), size=n)]
        at = np.searchsorted(cumulative, self.rng.random(n), side="right")
        return values[np.minimum(at, len(values) - 1)]

    def _by_pattern(
        self,
        patterns: Sequence[str] | Mapping[str, float],
        n: int,
        expand: Callable[[str, int], np.ndarray],
    ) -> np.ndarray:
        """Pick a pattern per value (weighted as :meth:`_choose`), expand each pattern for the
        rows that drew it."""
        chosen = self._choose(patterns, n)
        out = np.empty(n, dtype=object)
        for pattern in dict.fromkeys(chosen.tolist()):
            rows = np.flatnonzero(chosen == pattern)
            out[rows] = expand(pattern, len(rows))
        return out

    def _parse(self, pattern: str, m: int, *, bothify: bool = False) -> np.ndarray:
        """``generator.parse(pattern)`` m times: each ``{{token}}`` drawn for all m at once
        (and, with ``bothify``, then ``bothify`` of the result)."""
        out = np.full(m, "", dtype=object)
        at = 0
        for token in _TOKEN.finditer(pattern):
            out = out + self._literal(pattern[at : token.start()], m, bothify)
            if token.group(2):  # an argument group: Faker resolves it, per value
                drawn = np.array([self.fake.parse(token.group(0)) for _ in range(m)])
            else:
                drawn = self.draw(token.group(1), m).astype(str).astype(object)
            if bothify:  # placeholders a drawn value brings (no base provider's does)
                drawn = np.array(
                    [self.fake.bothify(v) if _SPECIAL & set(v) else v for v in drawn],
                    dtype=object,
                )
            out = out + drawn
            at = token.end()
        return out + self._literal(pattern[at:], m, bothify)

    def _literal(self, text: str, m: int, bothify: bool) -> np.ndarray | str:
        if bothify and _SPECIAL & set(text):
            return self._numerify(text, m, letters=True)
        return text

    def _numerify(self, pattern: str, m: int, *, letters: bool) -> np.ndarray:
        """``numerify(pattern)`` m times: `#` a digit, `%` 1-9, `$` 2-9, `!` a digit or
        nothing, `@` 1-9 or nothing (and `?` a letter when ``letters``, as `bothify`)."""
        out = np.full(m, "", dtype=object)
        for part in _PLACEHOLDER.split(pattern):
            if part == "#":
                out = out + _DIGITS[self.rng.integers(0, 10, m)]
            elif part in ("%", "$"):
                out = out + _DIGITS[self.rng.integers(1 if part == "%" else 2, 10, m)]
            elif part in ("!", "@"):
                digits = _DIGITS[self.rng.integers(0 if part == "!" else 1, 10, m)]
                out = out + np.where(self.rng.random(m) < 0.5, digits, "")
            elif part == "?" and letters:
                out = out + _LETTERS[self.rng.integers(0, len(_LETTERS), m)]
            elif part:
                out = out + part
        return out

    def _per_value(self, bound: Callable[[], Any], n: int) -> np.ndarray:
        out = np.empty(n, dtype=object)
        for i in range(n):  # one by one: a provider may return tuples (`latlng`)
            out[i] = bound()
        return out


def _lower(values: np.ndarray) -> np.ndarray:
    return np.array([v.lower() for v in values], dtype=object)
