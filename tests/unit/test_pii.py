import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from synth_platform.lib.evaluation import find_pii_leaks
from synth_platform.lib.pii import BIRTH_DATES, PiiDomain, fake_column, pii_domain


def test_fake_values_are_reproducible_and_avoid_real_values():
    a = fake_column(provider="name", n=200, seed=1)
    assert a.equals(fake_column(provider="name", n=200, seed=1))
    forbidden = set(a.iloc[:100])
    b = fake_column(provider="name", n=200, seed=1, forbidden=forbidden)
    assert not set(b) & forbidden


def test_null_share_is_reproduced():
    s = fake_column(provider="phone_number", n=2000, seed=3, null_share=0.1)
    assert 0.07 < s.isna().mean() < 0.13


def test_date_providers_give_datetimes():
    s = fake_column(provider="date_of_birth", n=10, seed=3)
    assert str(s.dtype).startswith("datetime64")


def _birth_dates(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, (dt.date(2005, 12, 31) - dt.date(1935, 1, 1)).days, n)
    return pd.Series([dt.date(1935, 1, 1) + dt.timedelta(days=int(d)) for d in days])


def test_birth_dates_never_equal_a_real_one_and_stay_in_the_real_range():
    # The case: 36 of 1,000 fake birth dates equalled a real customer's.
    real = _birth_dates(1000, seed=0)
    domain = pii_domain(real, pa.date32())
    fake = fake_column(provider="date_of_birth", n=1000, seed=42, forbidden=domain)
    dates = set(fake.dt.date)
    assert not dates & set(real)
    assert min(dates) >= real.min() and max(dates) <= real.max()
    assert fake.equals(fake_column(provider="date_of_birth", n=1000, seed=42, forbidden=domain))
    assert not fake.equals(fake_column(provider="date_of_birth", n=1000, seed=43, forbidden=domain))


def test_birth_dates_do_not_depend_on_today(monkeypatch):
    # Faker's date_of_birth counts back from today: it must not be used at all.
    from faker.providers.date_time import Provider

    def today_dependent(*args, **kwargs):
        raise AssertionError("Faker's date_of_birth depends on the current date")

    monkeypatch.setattr(Provider, "date_of_birth", today_dependent)
    plain = fake_column(provider="date_of_birth", n=50, seed=5)
    assert plain.between(pd.Timestamp(BIRTH_DATES[0]), pd.Timestamp(BIRTH_DATES[1])).all()
    text = fake_column(provider="date_of_birth", n=50, seed=5,
                       forbidden=PiiDomain(kind="text", forbidden=frozenset({"1970-01-01"})))  # fmt: skip
    assert all(isinstance(v, str) and len(v) == 10 for v in text)


def test_a_range_holding_only_real_values_is_left_rather_than_repeated():
    real = pd.Series([dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(30)])
    fake = fake_column(provider="date_of_birth", n=200, seed=1,
                       forbidden=pii_domain(real, pa.date32()))  # fmt: skip
    assert not set(fake.dt.date) & set(real)
    ints = pd.Series(range(10), dtype="int64")
    fake_ints = fake_column(provider="ssn", n=100, seed=1, forbidden=pii_domain(ints, pa.int8()))
    assert not set(fake_ints.dropna()) & set(range(10))
    assert fake_ints.between(-128, 127).all()


@pytest.mark.parametrize(
    ("real", "arrow_type"),
    [
        (pd.Series(np.arange(1000, 1500) * 7, dtype="int64"), pa.int64()),
        (pd.Series([Decimal("12.34"), Decimal("99.99"), None] * 50), pa.decimal128(6, 2)),
        (pd.Series(np.linspace(0, 1, 300)), pa.float64()),
        (
            pd.Series(pd.date_range("2020-01-01", periods=400, freq="h", tz="UTC")),
            pa.timestamp("us", tz="UTC"),
        ),  # fmt: skip
        (pd.Series(pd.date_range("2020-01-01", periods=400, freq="s")), pa.timestamp("ms")),
    ],
    ids=["bigint", "decimal", "double", "timestamptz", "timestamp_ms"],
)
def test_numeric_and_temporal_pii_is_redrawn_in_range_without_real_values(real, arrow_type):
    domain = pii_domain(real, arrow_type)
    fake = fake_column(provider="ssn", n=500, seed=9, null_share=0.1, forbidden=domain)
    values = fake.dropna()
    assert 0.05 < fake.isna().mean() < 0.16
    present = real.dropna()
    if pa.types.is_timestamp(arrow_type):
        assert (getattr(values.dt, "tz", None) is None) == (arrow_type.tz is None)
        assert not set(values) & set(present)
    else:
        as_float = {float(v) for v in present}
        assert not {float(v) for v in values} & as_float
        assert min(as_float) <= float(values.min()) and float(values.max()) <= max(as_float)
    if pa.types.is_decimal(arrow_type):
        assert all(round(float(v), 2) == float(v) for v in values)
    assert fake.equals(fake_column(provider="ssn", n=500, seed=9, null_share=0.1, forbidden=domain))


def test_the_leak_scan_covers_pii_columns_of_every_type():
    real = pd.DataFrame(
        {
            "email": ["a@x.org", "b@x.org"],
            "birth_date": [dt.date(1980, 5, 17), dt.date(1991, 2, 3)],
            "national_id": [Decimal("123456789"), Decimal("987654321")],
            "signup": pd.to_datetime(["2020-01-01 10:00", "2021-01-01 11:00"]).tz_localize("UTC"),
        }
    )
    synthetic = pd.DataFrame(
        {
            "email": ["a@x.org", "z@x.org", None],
            "note": ["b@x.org", "free", "text"],  # a real e-mail replayed in another column
            "birth_date": [dt.date(1980, 5, 17), dt.date(1980, 5, 18), None],
            "national_id": [123456789.0, 5.0, np.nan],
            "signup": pd.to_datetime(["2020-01-01 11:00", "2021-01-01 11:00", None]).tz_localize(
                "UTC"
            ),
        }
    )
    leaks = find_pii_leaks(
        synthetic=synthetic, real=real, pii_columns=["email", "birth_date", "national_id", "signup"]
    )
    assert leaks == {"email": 1, "note": 1, "birth_date": 1, "national_id": 1, "signup": 1}
    clean = synthetic.iloc[[1]]
    leaks = find_pii_leaks(synthetic=clean, real=real, pii_columns=list(real.columns))
    assert leaks["birth_date"] == leaks["national_id"] == leaks["email"] == 0
    assert leaks["signup"] == 1  # 2021-01-01 11:00 is real


def test_a_domain_prepares_its_forbidden_values_once_for_every_batch():
    """Sorting (or stringifying) every real value again per sampling batch made faking a
    table grow as rows squared: the domain keeps them."""
    real = pd.Series(np.arange(0, 200_000, 2, dtype=np.int64))
    domain = pii_domain(real, pa.int64())
    first = fake_column(provider="random_int", n=1_000, seed=1, forbidden=domain)
    prepared = domain.forbidden_sorted
    second = fake_column(provider="random_int", n=1_000, seed=2, forbidden=domain)
    assert domain.forbidden_sorted is prepared
    for fake in (first, second):
        assert not fake.isin(real).any()
    text = pii_domain(pd.Series(["ann", "bob"]), pa.string())
    assert text.forbidden_text is text.forbidden_text


def test_a_reference_table_with_personal_values_fails_its_privacy_gate_by_column():
    """`mode: reference` replaces the privacy metrics by a declaration and a PII scan: one
    e-mail (or phone, SSN, IP, Luhn-valid card) in a text column blocks, naming the column and
    the kind but never the value; plain codes and labels pass."""
    from synth_platform.lib.lifecycle import _reference_privacy
    from synth_platform.lib.pii import scan_for_pii
    from synth_platform.lib.verdict import decide

    clean = pd.DataFrame(
        {"code": ["JFK", "LGA", "N14228"], "label": ["Kennedy Intl", "LaGuardia", "2013-01-01"],
         "id": [1, 2, 3], "card_like": ["4111111111111112", "1234 5678", "10.0"]}
    )  # fmt: skip
    assert scan_for_pii(clean) == {}
    metrics, _, subjects, bounds = _reference_privacy(clean)
    assert decide(gate="privacy", metrics=metrics, bounds=bounds, subjects=subjects).passed

    dirty = clean.assign(
        contact=["ops@example.org", None, "(212) 555-0147"],
        note=["ssn 123-45-6789", "", "card 4111 1111 1111 1111"],
    )
    found = scan_for_pii(dirty)
    assert found == {"contact": {"email": 1, "phone": 1}, "note": {"ssn": 1, "card": 1}}
    metrics, _, subjects, bounds = _reference_privacy(dirty)
    verdict = decide(gate="privacy", metrics=metrics, bounds=bounds, subjects=subjects)
    assert not verdict.passed
    text = " ".join(verdict.failures)
    assert "contact" in text and "note" in text
    assert "ops@example.org" not in text and "123-45-6789" not in text  # never the value
