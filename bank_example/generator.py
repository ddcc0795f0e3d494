"""Deterministic demo source: a small retail bank written into a DuckDB file.

The generator produces three related tables (``customers``, ``accounts`` and
``transactions``) that look like real operational data: correlated columns, skewed
distributions, missing values, rare categories, datetimes with daily and weekly
patterns, and personally identifiable information (PII).

Everything numeric is vectorised with :func:`numpy.random.default_rng`; PII strings are
assembled from small pools drawn from a seeded :class:`faker.Faker` instance, so that a
million transactions can be generated in a few seconds. The same ``seed`` and size
always give identical output.

Example:
    >>> from pathlib import Path
    >>> counts = write_demo_source(path=Path(".synth/source/bank.duckdb"), scale=1.0)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

import duckdb
import numpy as np
import pandas as pd
from faker import Faker

__all__ = ["TABLE_SCHEMAS", "DemoSize", "generate_bank", "write_demo_source"]

# --------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------

_SIGNUP_START: Final = np.datetime64("2015-01-01", "D")
_REFERENCE_DAY: Final = np.datetime64("2025-12-31", "D")  # "today" for ages and dates
_ACTIVITY_START: Final = np.datetime64("2024-01-01", "D")  # first day with transactions
_DAYS_PER_YEAR: Final = 365.25

# --------------------------------------------------------------------------------------
# Categories (order matters: indices are used as codes)
# --------------------------------------------------------------------------------------

SEGMENTS: Final = ("retail", "premium", "private", "business")
_SEGMENT_P: Final = np.array([0.70, 0.20, 0.07, 0.03])
_SEGMENT_LOG_INCOME: Final = np.log([48_000.0, 95_000.0, 310_000.0, 165_000.0])
_SEGMENT_AGE_GAMMA: Final = np.array([[2.2, 11.0], [3.0, 9.5], [5.0, 8.0], [3.5, 8.0]])
_SEGMENT_EXTRA_ACCOUNTS: Final = np.array([0.55, 1.25, 2.10, 1.60])  # mean of extra accounts
_SEGMENT_ACTIVITY: Final = np.array([1.0, 1.2, 1.35, 1.6])

REGIONS: Final = (
    "North",
    "South",
    "East",
    "West",
    "Central",
    "Coastal",
    "Highlands",
    "Islands",
)
_REGION_P: Final = np.array([0.26, 0.20, 0.16, 0.13, 0.11, 0.08, 0.05, 0.01])
_REGION_INCOME_SHIFT: Final = np.array([0.05, -0.08, 0.10, 0.02, 0.15, 0.06, -0.12, -0.20])

ACCOUNT_TYPES: Final = ("checking", "savings", "credit_card", "loan", "mortgage")
_FIRST_ACCOUNT_P: Final = np.array(
    [
        [0.84, 0.10, 0.06, 0.00, 0.00],  # retail
        [0.80, 0.14, 0.06, 0.00, 0.00],  # premium
        [0.78, 0.17, 0.05, 0.00, 0.00],  # private
        [0.95, 0.03, 0.02, 0.00, 0.00],  # business
    ]
)
_EXTRA_ACCOUNT_P: Final = np.array(
    [
        [0.14, 0.36, 0.33, 0.15, 0.02],  # retail
        [0.12, 0.36, 0.31, 0.15, 0.06],  # premium
        [0.10, 0.42, 0.26, 0.10, 0.12],  # private
        [0.36, 0.20, 0.15, 0.27, 0.02],  # business
    ]
)
# Balance model per account type: (sign, multiple of annual income, offset, log sigma).
_BALANCE_MODEL: Final = np.array(
    [
        [1.0, 0.06, 200.0, 0.9],  # checking
        [1.0, 0.25, 500.0, 1.1],  # savings
        [-1.0, 0.02, 300.0, 0.9],  # credit_card
        [-1.0, 0.35, 2_000.0, 0.6],  # loan
        [-1.0, 3.00, 50_000.0, 0.35],  # mortgage
    ]
)
_TYPE_TXN_PER_YEAR: Final = np.array([60.0, 6.0, 45.0, 12.0, 12.0])

STATUSES: Final = ("open", "closed", "frozen")

MERCHANT_CATEGORIES: Final = (
    "groceries",
    "restaurants",
    "retail",
    "fuel",
    "online_shopping",
    "utilities",
    "travel",
    "healthcare",
    "cash_withdrawal",
    "financial_services",
    "gambling",
    "crypto",
)
# Merchant category mix per account type (rows follow ACCOUNT_TYPES).
_CATEGORY_P: Final = np.array(
    [
        [0.25, 0.14, 0.11, 0.10, 0.10, 0.09, 0.02, 0.05, 0.11, 0.022, 0.005, 0.003],
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.25, 0.75, 0.00, 0.00],
        [0.16, 0.17, 0.16, 0.07, 0.22, 0.04, 0.09, 0.06, 0.01, 0.01, 0.006, 0.004],
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00, 0.00, 0.00],
        [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00, 0.00, 0.00],
    ]
)
# Amount model per category: (median in USD, log sigma).
_CATEGORY_AMOUNT: Final = np.array(
    [
        [55.0, 0.7],  # groceries
        [32.0, 0.7],  # restaurants
        [60.0, 0.9],  # retail
        [48.0, 0.4],  # fuel
        [45.0, 1.0],  # online_shopping
        [110.0, 0.5],  # utilities
        [380.0, 0.9],  # travel
        [90.0, 1.0],  # healthcare
        [80.0, 0.6],  # cash_withdrawal
        [400.0, 0.8],  # financial_services (overridden for loans and mortgages)
        [70.0, 1.1],  # gambling
        [300.0, 1.2],  # crypto
    ]
)

CHANNELS: Final = ("card", "online", "atm", "transfer")
# Channel mix per merchant category (rows follow MERCHANT_CATEGORIES).
_CHANNEL_P: Final = np.array(
    [
        [0.92, 0.08, 0.00, 0.00],
        [0.85, 0.15, 0.00, 0.00],
        [0.80, 0.20, 0.00, 0.00],
        [1.00, 0.00, 0.00, 0.00],
        [0.03, 0.97, 0.00, 0.00],
        [0.05, 0.50, 0.00, 0.45],
        [0.30, 0.70, 0.00, 0.00],
        [0.75, 0.15, 0.00, 0.10],
        [0.00, 0.00, 1.00, 0.00],
        [0.00, 0.15, 0.00, 0.85],
        [0.15, 0.85, 0.00, 0.00],
        [0.00, 0.60, 0.00, 0.40],
    ]
)
# Relative hour-of-day weights per channel (rows follow CHANNELS).
_HOUR_WEIGHTS: Final = np.array(
    [
        [1, 1, 1, 1, 1, 2, 4, 7, 9, 9, 10, 12, 16, 15, 11, 10, 11, 14, 16, 15, 12, 8, 4, 2],
        [4, 3, 2, 2, 2, 2, 3, 5, 7, 8, 9, 9, 10, 10, 9, 9, 9, 10, 12, 14, 16, 17, 14, 8],
        [1, 1, 1, 1, 1, 1, 2, 5, 8, 9, 10, 11, 14, 13, 10, 10, 11, 14, 15, 13, 10, 7, 4, 2],
        [0, 0, 0, 0, 0, 1, 2, 6, 12, 16, 17, 16, 14, 15, 16, 16, 14, 10, 6, 3, 2, 1, 1, 0],
    ],
    dtype=float,
)
_WEEKDAY_FACTOR: Final = np.array([0.95, 0.93, 0.95, 1.00, 1.18, 1.12, 0.87])  # Mon..Sun
_MONTH_FACTOR: Final = np.array(
    [0.88, 0.90, 0.97, 0.98, 1.00, 1.04, 1.06, 1.05, 0.98, 1.00, 1.10, 1.28]
)
_FRAUD_RATE: Final = 0.01

# --------------------------------------------------------------------------------------
# Output schemas (DuckDB types); the writer casts every column explicitly.
# --------------------------------------------------------------------------------------

TABLE_SCHEMAS: Final[dict[str, dict[str, str]]] = {
    "customers": {
        "customer_id": "BIGINT",
        "full_name": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "national_id": "VARCHAR",
        "street_address": "VARCHAR",
        "birth_date": "DATE",
        "segment": "VARCHAR",
        "region": "VARCHAR",
        "annual_income": "DOUBLE",
        "credit_score": "INTEGER",
        "signup_date": "DATE",
    },
    "accounts": {
        "account_id": "BIGINT",
        "customer_id": "BIGINT",
        "account_type": "VARCHAR",
        "opened_at": "DATE",
        "balance": "DOUBLE",
        "status": "VARCHAR",
    },
    "transactions": {
        "transaction_id": "BIGINT",
        "account_id": "BIGINT",
        "occurred_at": "TIMESTAMP",
        "amount": "DOUBLE",
        "merchant_category": "VARCHAR",
        "channel": "VARCHAR",
        "is_fraud": "BOOLEAN",
    },
}
"""Column names and DuckDB types of the demo tables, in output order."""


@dataclass(frozen=True)
class DemoSize:
    """Size of the demo bank.

    Only the number of customers is chosen; the other tables follow from it (about
    1.8 accounts per customer and about 8.3 transactions per account).

    Attributes:
        customers: Number of customers to generate (at least 1).
    """

    customers: int

    BASE_CUSTOMERS: ClassVar[int] = 1_000
    ACCOUNTS_PER_CUSTOMER: ClassVar[float] = 1.8
    TRANSACTIONS_PER_ACCOUNT: ClassVar[float] = 8.3

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")

    @classmethod
    def from_scale(cls, scale: float) -> DemoSize:
        """Build a size from a scale factor.

        Args:
            scale: Multiplier of the base size; ``1.0`` gives 1,000 customers (about
                1,800 accounts and 15,000 transactions) and ``67`` about a million
                transactions.

        Returns:
            The corresponding size.

        Raises:
            ValueError: If ``scale`` is not positive.
        """
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        return cls(customers=max(1, round(cls.BASE_CUSTOMERS * scale)))

    @property
    def expected_accounts(self) -> int:
        """Approximate number of accounts."""
        return round(self.customers * self.ACCOUNTS_PER_CUSTOMER)

    @property
    def expected_transactions(self) -> int:
        """Approximate number of transactions."""
        return round(self.expected_accounts * self.TRANSACTIONS_PER_ACCOUNT)


def generate_bank(*, size: DemoSize, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Generate the demo bank in memory.

    The function is pure: the same ``size`` and ``seed`` always give identical frames.

    Args:
        size: How many customers to generate.
        seed: Seed of the random generators (numpy and Faker).

    Returns:
        The frames ``customers``, ``accounts`` and ``transactions``, with the columns of
        :data:`TABLE_SCHEMAS` in that order. Dates are ``datetime64`` values at midnight.
    """
    rng = np.random.default_rng(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)

    customers, latent_income = _customers(rng=rng, fake=fake, n=size.customers)
    accounts = _accounts(
        rng=rng,
        customers=customers,
        latent_income=latent_income,
        target_per_customer=size.ACCOUNTS_PER_CUSTOMER,
    )
    transactions = _transactions(
        rng=rng,
        customers=customers,
        accounts=accounts,
        latent_income=latent_income,
        target_per_account=size.TRANSACTIONS_PER_ACCOUNT,
    )
    return {
        "customers": customers,
        "accounts": accounts.drop(columns="_customer_idx"),
        "transactions": transactions,
    }


def write_demo_source(*, path: Path, scale: float = 1.0, seed: int = 7) -> dict[str, int]:
    """Generate the demo bank and write it into a new DuckDB file.

    The tables are written to a temporary file next to ``path`` that then atomically
    replaces ``path``, so readers never see a half-written database.

    Args:
        path: Destination DuckDB file; parent folders are created.
        scale: Size multiplier, see :meth:`DemoSize.from_scale`.
        seed: Seed of the random generators.

    Returns:
        Row count per table name.
    """
    frames = generate_bank(size=DemoSize.from_scale(scale), seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with duckdb.connect(str(tmp)) as con:
            for table, schema in TABLE_SCHEMAS.items():
                con.register("_frame", frames[table])
                columns = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in schema.items())
                con.execute(f"CREATE TABLE main.{table} AS SELECT {columns} FROM _frame")
                con.unregister("_frame")
            con.execute("CHECKPOINT")
        stale_wal = path.with_name(f"{path.name}.wal")
        stale_wal.unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(f"{tmp.name}.wal").unlink(missing_ok=True)
    return {table: len(frame) for table, frame in frames.items()}


# --------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------


def _customers(*, rng: np.random.Generator, fake: Faker, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Generate customers and their latent (never missing) annual income."""
    segment = rng.choice(len(SEGMENTS), size=n, p=_SEGMENT_P)
    region = rng.choice(len(REGIONS), size=n, p=_REGION_P)

    shape, scale = _SEGMENT_AGE_GAMMA[segment].T
    age = np.clip(18.0 + rng.gamma(shape, scale), 18.0, 92.0)
    birth_date = _REFERENCE_DAY - np.floor(age * _DAYS_PER_YEAR).astype("timedelta64[D]")

    # Income: lognormal by segment and region, with an age curve peaking in the early 50s.
    age_effect = 0.55 * (1.0 - ((age - 52.0) / 34.0) ** 2)
    log_income = (
        _SEGMENT_LOG_INCOME[segment]
        + _REGION_INCOME_SHIFT[region]
        + np.clip(age_effect, -0.6, 0.55)
        - 0.25
        + rng.normal(0.0, 0.45, n)
    )
    latent_income = np.round(np.exp(log_income), -2)
    annual_income = np.where(rng.random(n) < 0.05, np.nan, latent_income)

    # Credit score: driven by income, age and noise, clipped to the FICO range.
    income_z = (log_income - 11.0) / 0.7
    credit = 655.0 + 38.0 * income_z + 1.6 * (age - 40.0) + rng.normal(0.0, 55.0, n)
    credit -= np.where(rng.random(n) < 0.05, rng.gamma(2.0, 70.0, n), 0.0)  # subprime tail
    credit_score = np.clip(np.round(credit), 300, 850).astype(np.int32)

    # Signup: skewed to recent years, never before the 18th birthday.
    span = int((_REFERENCE_DAY - _SIGNUP_START).astype(int))
    signup = _SIGNUP_START + np.floor(rng.beta(1.6, 1.0, n) * span).astype("timedelta64[D]")
    adult = birth_date + np.ceil(18 * _DAYS_PER_YEAR).astype(int).astype("timedelta64[D]")
    signup_date = np.minimum(np.maximum(signup, adult), _REFERENCE_DAY)

    first, last, full_name = _names(rng=rng, fake=fake, n=n)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n, dtype=np.int64) + 100_001,
            "full_name": full_name,
            "email": _emails(rng=rng, fake=fake, first=first, last=last, segment=segment),
            "phone": _phones(rng=rng, n=n),
            "national_id": _national_ids(rng=rng, n=n),
            "street_address": _street_addresses(rng=rng, fake=fake, n=n),
            "birth_date": birth_date.astype("datetime64[s]"),
            "segment": np.asarray(SEGMENTS, dtype=object)[segment],
            "region": np.asarray(REGIONS, dtype=object)[region],
            "annual_income": annual_income,
            "credit_score": credit_score,
            "signup_date": signup_date.astype("datetime64[s]"),
        }
    )
    return frame, latent_income


def _pool(draw: Callable[[], str], k: int) -> np.ndarray:
    """Draw ``k`` values from a Faker provider method into an object array."""
    return np.asarray([draw() for _ in range(k)], dtype=object)


def _names(
    *, rng: np.random.Generator, fake: Faker, n: int
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Full names from Faker pools, with an occasional middle initial."""
    first = pd.Series(rng.choice(_pool(fake.first_name, 1_500), size=n))
    last = pd.Series(rng.choice(_pool(fake.last_name, 1_500), size=n))
    initials = pd.Series(
        np.asarray(list("ABCDEFGHJKLMNPRSTW"), dtype=object)[rng.integers(0, 18, n)]
    )
    middle = pd.Series(np.where(rng.random(n) < 0.08, " " + initials + ".", ""))
    return first, last, first + middle + " " + last


def _emails(
    *,
    rng: np.random.Generator,
    fake: Faker,
    first: pd.Series,
    last: pd.Series,
    segment: np.ndarray,
) -> pd.Series:
    """Unique email addresses derived from the customer's name."""
    n = len(first)
    f = first.str.lower().str.replace(r"[^a-z]", "", regex=True)
    la = last.str.lower().str.replace(r"[^a-z]", "", regex=True)
    digits = pd.Series(rng.integers(1, 100, n).astype(str))
    year = pd.Series(rng.integers(60, 100, n).astype(str))
    fmt = rng.choice(5, size=n, p=[0.35, 0.2, 0.2, 0.15, 0.1])
    local = np.select(
        [fmt == 0, fmt == 1, fmt == 2, fmt == 3],
        [f + "." + la, f.str[0] + la, f + la + digits, f + "_" + la + year],
        default=f + digits,
    )
    free = rng.choice(_pool(fake.free_email_domain, 200), size=n)
    company = rng.choice(_pool(fake.domain_name, 300), size=n)
    domain = np.where(segment == SEGMENTS.index("business"), company, free)
    email = pd.Series(local, dtype=object) + "@" + pd.Series(domain, dtype=object)
    # Make addresses unique by adding a number to the local part of repeated ones.
    while (dup := email.duplicated()).any():
        extra = pd.Series(
            rng.integers(100, 10_000, int(dup.sum())).astype(str), index=email.index[dup]
        )
        parts = email[dup].str.split("@", n=1, expand=True)
        email[dup] = parts[0] + extra + "@" + parts[1]
    return email


def _phones(*, rng: np.random.Generator, n: int) -> pd.Series:
    """US phone numbers in mixed formats, 3% missing."""
    area = pd.Series(rng.integers(201, 990, n).astype(str))
    exchange = pd.Series(rng.integers(200, 1000, n).astype(str))
    line = pd.Series(rng.integers(0, 10_000, n).astype(str)).str.zfill(4)
    fmt = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    phone = np.select(
        [fmt == 0, fmt == 1, fmt == 2],
        [
            "(" + area + ") " + exchange + "-" + line,
            area + "-" + exchange + "-" + line,
            "+1-" + area + "-" + exchange + "-" + line,
        ],
        default=area + "." + exchange + "." + line,
    )
    return pd.Series(np.where(rng.random(n) < 0.03, None, phone), dtype=object)


def _national_ids(*, rng: np.random.Generator, n: int) -> pd.Series:
    """Unique SSN-like identifiers ``AAA-GG-SSSS`` (no area 000, 666 or 9xx)."""
    groups, serials = 99, 9_999
    code = rng.choice(898 * groups * serials, size=n, replace=False)
    area_idx, rest = np.divmod(code, groups * serials)
    area = area_idx + 1
    area = np.where(area >= 666, area + 1, area)
    group, serial = np.divmod(rest, serials)
    return (
        pd.Series(area.astype(str)).str.zfill(3)
        + "-"
        + pd.Series((group + 1).astype(str)).str.zfill(2)
        + "-"
        + pd.Series((serial + 1).astype(str)).str.zfill(4)
    )


def _street_addresses(*, rng: np.random.Generator, fake: Faker, n: int) -> pd.Series:
    """Street addresses: building number, street name and an occasional unit."""
    digits = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.05, 0.2, 0.3, 0.35, 0.1])
    number = np.floor(10.0 ** (digits - 1 + rng.random(n))).astype(np.int64)
    street = rng.choice(_pool(fake.street_name, 2_000), size=n)
    address = pd.Series(number.astype(str)) + " " + pd.Series(street, dtype=object)
    unit_kind = np.where(rng.random(n) < 0.75, " Apt. ", " Suite ")
    unit = pd.Series(unit_kind) + pd.Series(rng.integers(1, 1000, n).astype(str))
    return address.where(rng.random(n) >= 0.12, address + unit)


# --------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------


def _accounts(
    *,
    rng: np.random.Generator,
    customers: pd.DataFrame,
    latent_income: np.ndarray,
    target_per_customer: float,
) -> pd.DataFrame:
    """Generate accounts; keeps ``_customer_idx`` (row of the owner) for later steps."""
    n = len(customers)
    segment = _codes(customers["segment"], SEGMENTS)
    extra_mean = _SEGMENT_EXTRA_ACCOUNTS[segment]
    extra_mean *= (target_per_customer - 1.0) / extra_mean.mean()
    # Negative binomial (r=1.5) gives a long tail of customers with many accounts.
    r = 1.5
    n_accounts = 1 + rng.negative_binomial(r, r / (r + extra_mean))
    owner = np.repeat(np.arange(n), n_accounts)
    m = len(owner)
    first = np.ones(m, dtype=bool)
    first[1:] = owner[1:] != owner[:-1]

    owner_segment = segment[owner]
    account_type = np.where(
        first,
        _choice_by_row(rng, _FIRST_ACCOUNT_P, owner_segment),
        _choice_by_row(rng, _EXTRA_ACCOUNT_P, owner_segment),
    )

    signup = customers["signup_date"].to_numpy().astype("datetime64[D]")[owner]
    lag_days = np.where(first, rng.integers(0, 4, m), np.ceil(rng.exponential(700.0, m)))
    opened_at = np.minimum(signup + lag_days.astype("timedelta64[D]"), _REFERENCE_DAY)
    age_years = (_REFERENCE_DAY - opened_at).astype(int) / _DAYS_PER_YEAR

    p_frozen = np.full(m, 0.01)
    p_closed = np.clip(0.025 + 0.016 * age_years, 0.0, 0.3)
    u = rng.random(m)
    status = np.where(u < p_frozen, 2, np.where(u < p_frozen + p_closed, 1, 0))

    sign, multiple, offset, sigma = _BALANCE_MODEL[account_type].T
    median = multiple * latent_income[owner] + offset
    balance = sign * np.exp(np.log(median) + rng.normal(0.0, 1.0, m) * sigma)
    is_mortgage = account_type == ACCOUNT_TYPES.index("mortgage")
    balance = np.where(is_mortgage, balance * np.clip(1.0 - age_years / 25.0, 0.05, 1.0), balance)
    is_card = account_type == ACCOUNT_TYPES.index("credit_card")
    balance = np.where(is_card & (rng.random(m) < 0.25), 0.0, balance)
    is_checking = account_type == ACCOUNT_TYPES.index("checking")
    overdraft = is_checking & (rng.random(m) < 0.03)
    balance = np.where(overdraft, -rng.exponential(250.0, m), balance)
    balance = np.where(status == 1, 0.0, np.round(balance, 2))

    return pd.DataFrame(
        {
            "account_id": np.arange(m, dtype=np.int64) + 5_000_001,
            "customer_id": customers["customer_id"].to_numpy()[owner],
            "account_type": np.asarray(ACCOUNT_TYPES, dtype=object)[account_type],
            "opened_at": opened_at.astype("datetime64[s]"),
            "balance": balance + 0.0,  # normalise -0.0
            "status": np.asarray(STATUSES, dtype=object)[status],
            "_customer_idx": owner,
        }
    )


# --------------------------------------------------------------------------------------
# Transactions
# --------------------------------------------------------------------------------------


def _transactions(
    *,
    rng: np.random.Generator,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    latent_income: np.ndarray,
    target_per_account: float,
) -> pd.DataFrame:
    """Generate card, cash and transfer transactions for the accounts."""
    m = len(accounts)
    owner = accounts["_customer_idx"].to_numpy()
    account_type = _codes(accounts["account_type"], ACCOUNT_TYPES)
    status = _codes(accounts["status"], STATUSES)
    segment = _codes(customers["segment"], SEGMENTS)[owner]
    opened = accounts["opened_at"].to_numpy().astype("datetime64[D]")

    # Activity window per account, in day indices relative to the activity start.
    n_days = int((_REFERENCE_DAY - _ACTIVITY_START).astype(int)) + 1
    start = np.maximum((opened - _ACTIVITY_START).astype(int), 0)
    years_active = (n_days - start) / _DAYS_PER_YEAR

    status_factor = np.array([1.0, 0.3, 0.5])[status]
    rate = _TYPE_TXN_PER_YEAR[account_type] * _SEGMENT_ACTIVITY[segment] * status_factor
    mean = rate * years_active
    mean *= target_per_account * m / mean.sum()
    r = 2.0
    counts = rng.negative_binomial(r, r / (r + mean))
    acct = np.repeat(np.arange(m), counts)
    n = len(acct)

    # Day: inverse CDF over calendar weights restricted to each account's window.
    days = _ACTIVITY_START + np.arange(n_days).astype("timedelta64[D]")
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    month = days.astype("datetime64[M]").astype(int) % 12
    trend = 1.0 + 0.12 * np.arange(n_days) / n_days
    weights = _WEEKDAY_FACTOR[weekday] * _MONTH_FACTOR[month] * trend
    cdf = np.concatenate([[0.0], np.cumsum(weights)])
    lo, hi = cdf[start[acct]], cdf[-1]
    day = np.searchsorted(cdf, lo + rng.random(n) * (hi - lo), side="right") - 1
    day = np.clip(day, start[acct], n_days - 1)

    category = _choice_by_row(rng, _CATEGORY_P, account_type[acct])
    channel = _choice_by_row(rng, _CHANNEL_P, category)
    hour = _choice_by_row(rng, _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum(axis=1, keepdims=True), channel)
    second = rng.integers(0, 3_600, n)
    occurred_at = (_ACTIVITY_START + day.astype("timedelta64[D]")).astype("datetime64[s]") + (
        hour * 3_600 + second
    ).astype("timedelta64[s]")

    # Amount: lognormal per category, scaled by income; loans and mortgages pay instalments.
    income = latent_income[owner[acct]]
    median, sigma = _CATEGORY_AMOUNT[category].T
    median = median * (income / 60_000.0) ** 0.35
    txn_type = account_type[acct]
    median = np.where(txn_type == ACCOUNT_TYPES.index("loan"), income * 0.012, median)
    median = np.where(txn_type == ACCOUNT_TYPES.index("mortgage"), income * 0.022, median)
    sigma = np.where(txn_type >= ACCOUNT_TYPES.index("loan"), 0.25, sigma)
    z = rng.normal(0.0, 1.0, n)
    amount = np.exp(np.log(median) + sigma * z)
    is_cash = category == MERCHANT_CATEGORIES.index("cash_withdrawal")
    amount = np.where(is_cash, np.maximum(20.0, np.round(amount / 20.0) * 20.0), amount)
    amount = np.maximum(np.round(amount, 2), 0.5)

    # Fraud: logistic in channel, amount, hour, risky categories and account state.
    risky = np.isin(category, [MERCHANT_CATEGORIES.index(c) for c in ("gambling", "crypto")])
    new_account = (day - (opened[acct] - _ACTIVITY_START).astype(int)) < 60
    logit = (
        1.5 * (channel == CHANNELS.index("online"))
        + 0.9 * np.clip(z, -2.0, 4.0)
        + 0.9 * (hour < 6)
        + 1.3 * risky
        + 0.6 * new_account
        + 1.5 * (status[acct] == STATUSES.index("frozen"))
        - 0.8 * (channel == CHANNELS.index("transfer"))
    )
    p_fraud = _sigmoid(logit + _calibrate_intercept(logit, _FRAUD_RATE))
    is_fraud = rng.random(n) < p_fraud

    order = np.lexsort((acct, occurred_at))
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype=np.int64) + 900_000_001,
            "account_id": accounts["account_id"].to_numpy()[acct[order]],
            "occurred_at": occurred_at[order],
            "amount": amount[order],
            "merchant_category": np.asarray(MERCHANT_CATEGORIES, dtype=object)[category[order]],
            "channel": np.asarray(CHANNELS, dtype=object)[channel[order]],
            "is_fraud": is_fraud[order],
        }
    )


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    """Integer codes of ``values`` in ``categories``."""
    return pd.Categorical(values, categories=list(categories)).codes.astype(np.int64)


def _choice_by_row(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per element, from the probability row selected by ``rows``."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random(len(rows))
    out = np.empty(len(rows), dtype=np.int64)
    for row in range(len(probs)):
        mask = rows == row
        out[mask] = np.searchsorted(cdf[row], u[mask], side="right")
    return np.minimum(out, probs.shape[1] - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate_intercept(logit: np.ndarray, rate: float) -> float:
    """Intercept that makes the mean of ``sigmoid(logit + b)`` equal to ``rate``."""
    if len(logit) == 0:
        return 0.0
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if _sigmoid(logit + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
