from synth_platform.lib.pii import fake_column


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
