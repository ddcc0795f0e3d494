"""VectorFaker draws Faker's providers a column at a time, with Faker's formats and weights."""

import re
from collections import Counter

import numpy as np
import pytest
from faker import Faker
from faker.providers import BaseProvider

from synth_platform.lib.fake_text import VectorFaker

N = 20_000


def _faker(provider: str, n: int, locale: str = "en_US") -> list[str]:
    fake = Faker(locale)
    fake.seed_instance(1)
    return [getattr(fake, provider)() for _ in range(n)]


def _shares(values, key) -> Counter:
    counts = Counter(key(v) for v in values)
    return Counter({k: c / len(values) for k, c in counts.items()})


def _tvd(a: Counter, b: Counter) -> float:
    return 0.5 * sum(abs(a[k] - b[k]) for k in set(a) | set(b))


def _shape(v: str) -> str:
    return re.sub(r"\d", "#", v)


@pytest.mark.parametrize(
    ("provider", "key", "bound"),
    [
        # How many words a name has: Faker's weighted formats put a prefix or suffix on ~3%.
        ("name", lambda v: len(v.split()), 0.02),
        # Phone formats, digit for digit.
        ("phone_number", _shape, 0.03),
        # Street address with or without a secondary unit, and the unit's kind.
        ("street_address", lambda v: ("Apt." in v, "Suite" in v), 0.02),
        # User names: with digits or without (dots are slugified away, as by Faker).
        ("user_name", lambda v: (bool(re.search(r"\d", v)), "." in v), 0.02),
        ("email", lambda v: v.split("@")[1], 0.02),
        ("company", lambda v: ("," in v, "-" in v), 0.02),
    ],
)
def test_vectorised_providers_follow_fakers_formats_and_weights(provider, key, bound):
    ours = VectorFaker("en_US", seed=3).draw(provider, N)
    assert len(ours) == N and all(isinstance(v, str) and v for v in ours)
    assert _tvd(_shares(ours, key), _shares(_faker(provider, N), key)) < bound


def test_weighted_word_lists_keep_their_frequencies():
    # en_US first names are weighted by frequency: common names must stay common.
    ours = Counter(VectorFaker("en_US", seed=3).draw("first_name", N))
    theirs = Counter(_faker("first_name", N))
    top = [name for name, _ in theirs.most_common(20)]
    assert sum(ours[n] for n in top) / N == pytest.approx(sum(theirs[n] for n in top) / N, abs=0.02)


def test_values_are_reproducible_from_the_seed():
    a = VectorFaker("en_US", seed=5).draw("street_address", 500)
    b = VectorFaker("en_US", seed=5).draw("street_address", 500)
    c = VectorFaker("en_US", seed=6).draw("street_address", 500)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()


@pytest.mark.parametrize("locale", ["de_DE", "fr_FR", "ja_JP", "ru_RU", "zh_CN"])
def test_other_locales_draw_their_own_data(locale):
    faker = VectorFaker(locale, seed=1)
    person = faker.fake.name.__self__
    words = {
        w for attr in ("first_names", "first_names_female", "first_names_male", "last_names",
                       "last_names_female", "last_names_male")
        for w in getattr(person, attr, ())
    }  # fmt: skip
    # Every name holds one of the locale's own first or last names.
    assert all(any(w in v for w in words) for v in faker.draw("name", 200))
    ours = faker.draw("email", 2_000)
    assert all(re.fullmatch(r"[\w-]+@[\w.-]+\.\w+", v) for v in ours), ours[:5]
    domain = Counter(v.split("@")[1] for v in ours)
    assert set(domain) <= {v.split("@")[1] for v in _faker("email", 2_000, locale)}


def test_a_method_a_locale_or_user_overrides_is_called_through_faker():
    class Custom(BaseProvider):
        def name(self) -> str:
            return "Custom Name"

    faker = VectorFaker("en_US", seed=1)
    faker.fake.add_provider(Custom)
    assert set(faker.draw("name", 50)) == {"Custom Name"}
    # en_US's own ssn logic is not one the vectoriser knows: Faker draws it, per value.
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", v) for v in faker.draw("ssn", 200))


def test_common_providers_take_the_vectorised_path(monkeypatch):
    # Were the identity lookup to miss (a Faker release wrapping its methods), every value would
    # silently go through Faker one call at a time again (~20 s for the 1M example's customers).
    called = []
    original = VectorFaker._per_value

    def per_value(self, bound, n):
        called.append(bound.__name__)
        return original(self, bound, n)

    monkeypatch.setattr(VectorFaker, "_per_value", per_value)
    faker = VectorFaker("en_US", seed=1)
    for provider in ("name", "email", "safe_email", "user_name", "phone_number", "street_address",
                     "city", "company", "first_name", "last_name"):  # fmt: skip
        faker.draw(provider, 100)
    assert called == []
    faker.draw("address", 100)  # its state, postcode and military tokens: en_US's own methods
    assert set(called) <= {"state_abbr", "postcode", "military_apo", "military_dpo",
                           "military_ship", "military_state"} and "postcode" in called  # fmt: skip


def test_digit_placeholders_follow_fakers_rules():
    faker = VectorFaker("en_US", seed=2)
    rule = {"#": r"\d", "%": "[1-9]", "$": "[2-9]", "!": r"\d?", "@": "[1-9]?"}
    patterns = ["#%$!@-x", "!!!@@@", "$$-%%-##"]
    for pattern in patterns:
        values = faker._numerify(pattern, 2_000, letters=False)
        regex = "".join(rule.get(c, re.escape(c)) for c in pattern)
        assert all(re.fullmatch(regex, v) for v in values)
        # "!" and "@" are empty half of the time, as Faker's random_digit_or_empty.
        if pattern == "!!!@@@":
            assert np.mean([len(v) for v in values]) == pytest.approx(3.0, abs=0.1)
    # Phone numbers match one of the locale's own formats, digit rule for digit rule.
    formats = faker.fake.phone_number.__self__.formats
    regexes = [re.compile("".join(rule.get(c, re.escape(c)) for c in f)) for f in formats]
    for v in faker.draw("phone_number", 2_000):
        assert any(r.fullmatch(v) for r in regexes), v
