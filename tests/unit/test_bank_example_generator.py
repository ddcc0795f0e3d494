import duckdb
import pandas as pd

from bank_example.generator import DemoSize, generate_bank, write_demo_source


def test_same_seed_gives_the_same_demo_source():
    a = generate_bank(size=DemoSize.from_scale(0.2), seed=11)
    b = generate_bank(size=DemoSize.from_scale(0.2), seed=11)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])
    other = generate_bank(size=DemoSize.from_scale(0.2), seed=12)
    assert not a["customers"].equals(other["customers"])


def test_demo_source_looks_like_real_data():
    bank = generate_bank(size=DemoSize.from_scale(1), seed=7)
    c, acc, tx = bank["customers"], bank["accounts"], bank["transactions"]
    assert c.customer_id.is_unique and acc.account_id.is_unique
    assert acc.customer_id.isin(c.customer_id).all() and tx.account_id.isin(acc.account_id).all()
    assert 0.01 < c.annual_income.isna().mean() < 0.1  # nulls
    assert c[["annual_income", "credit_score"]].corr().iloc[0, 1] > 0.3  # correlated
    assert c.segment.value_counts(normalize=True).min() < 0.05  # a rare category
    assert tx.amount.skew() > 2  # skewed
    assert 0.002 < tx.is_fraud.mean() < 0.03


def test_demo_source_is_written_to_a_duckdb_file(tmp_path):
    path = tmp_path / "src" / "bank.duckdb"
    counts = write_demo_source(path=path, scale=0.1, seed=1)
    with duckdb.connect(str(path), read_only=True) as con:
        for t, n in counts.items():
            assert con.execute(f"select count(*) from {t}").fetchall()[0][0] == n
