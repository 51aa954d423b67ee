"""Sample data for demos, tests and benchmarks, made on the spot (nothing is downloaded).

- ``breast_cancer_split``: scikit-learn's bundled breast-cancer data, split by columns
  into a label holder's table (id, label, 10 features) and a feature provider's table
  (id, 20 features), the classic vertical federated learning setting.
- ``credit_table``: a generated credit-style table (ids like phone numbers, numeric
  and categorical features, a default label drawn from a known logistic model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def breast_cancer_split(*, shuffle_seed: int | None = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    features = pd.DataFrame(data.data, columns=[name.replace(" ", "_") for name in data.feature_names])
    # Ids with leading zeros on purpose: they must survive every step as text.
    ids = pd.Series([f"{i:06d}" for i in range(len(features))], name="id")
    guest = pd.concat([ids, pd.Series(data.target, name="y"), features.iloc[:, :10]], axis=1)
    host = pd.concat([ids, features.iloc[:, 10:]], axis=1)
    if shuffle_seed is not None:
        # Each party keeps its rows in its own order, as real organisations do.
        guest = guest.sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)
        host = host.sample(frac=1.0, random_state=shuffle_seed + 1).reset_index(drop=True)
    return guest, host


REGIONS = ["north", "south", "east", "west", "central"]
EDUCATION = ["primary", "secondary", "bachelor", "master", "doctorate"]


def credit_table(rows: int = 100_000, *, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    phone = rng.choice(10**9, size=rows * 2, replace=False)[:rows]
    ids = [f"13{p:09d}" for p in phone]
    age = rng.integers(18, 76, size=rows)
    income = np.round(rng.lognormal(mean=8.6, sigma=0.55, size=rows), 2)
    debt_ratio = np.round(np.clip(rng.beta(2, 5, size=rows) * 1.4, 0, None), 4)
    credit_lines = rng.poisson(4, size=rows)
    months_employed = rng.integers(0, 480, size=rows)
    late_payments = rng.poisson(0.6, size=rows)
    utilisation = np.round(rng.uniform(0, 1, size=rows), 4)
    region = rng.choice(REGIONS, size=rows)
    education = rng.choice(EDUCATION, size=rows, p=[0.1, 0.35, 0.35, 0.15, 0.05])
    logit = (
        -2.2
        - 0.025 * (age - 40)
        - 0.00008 * (income - 6000)
        + 2.1 * debt_ratio
        + 0.55 * late_payments
        + 1.2 * utilisation
        - 0.002 * months_employed
        + 0.3 * (region == "south")
    )
    default = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    income_with_gaps = income.astype(object)
    income_with_gaps[rng.uniform(size=rows) < 0.02] = ""  # real exports have gaps
    return pd.DataFrame(
        {
            "id": ids,
            "default": default,
            "age": age,
            "income": income_with_gaps,
            "debt_ratio": debt_ratio,
            "credit_lines": credit_lines,
            "months_employed": months_employed,
            "late_payments": late_payments,
            "utilisation": utilisation,
            "region": region,
            "education": education,
        }
    )
