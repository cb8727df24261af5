"""Hashing of e-mail addresses and phone numbers, as the CRM readers write them.

``email_hash`` is the SHA-256 hex digest of the trimmed, lower-cased address; ``phone_hash``
the SHA-256 hex digest of the number's digits (no country-code normalisation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analysis.sources.column_map import to_str

__all__ = ["hash_email", "hash_phone"]


def _sha256_unique(values: pd.Series) -> pd.Series:
    """Return the SHA-256 hex of each value (NaN stays NaN); each distinct value is hashed once."""
    codes, uniques = pd.factorize(values)
    digests = np.array(
        [hashlib.sha256(str(u).encode("utf-8")).hexdigest() for u in uniques] + [np.nan],
        dtype=object,
    )
    return pd.Series(digests[codes], index=values.index).astype("str")


def hash_email(values: Iterable[Any]) -> pd.Series:
    """Return the SHA-256 hex digests of e-mail addresses, as the CRM readers write ``email_hash``.

    The address is trimmed and lower-cased first, so ``" Jane@Example.com"`` and
    ``"jane@example.com"`` hash alike. Missing and blank values stay missing. Compute the
    ``email_hash`` of other sources (e.g. the logged-in web rows) with this function so that
    stitching can join them; :func:`~analysis.sources.crm.read_contacts` and the other readers
    write them this way.

    Parameters
    ----------
    values : Series or iterable of str

    Returns
    -------
    Series of str (pandas "str" dtype), same index as ``values`` when it is a Series.

    Examples
    --------
    >>> hash_email(pd.Series([" Jane@Example.com", None])).str.slice(0, 12).tolist()
    ['8c87b489ce35', nan]
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    text = to_str(s, missing_words=False).str.lower()
    return _sha256_unique(text)


def hash_phone(values: Iterable[Any]) -> pd.Series:
    """Return the SHA-256 hex digests of phone numbers' digits.

    ``"+49 30 1234-5"`` gives the hash of ``"493012345"``; values without digits are missing.
    No country-code normalisation: write numbers in one format (e.g. E.164) before loading.

    Examples
    --------
    >>> (hash_phone(["+49 30 1234-5"]) == hash_phone(["4930 12345"])).all()
    np.True_
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    digits = to_str(s, missing_words=False).str.replace(r"\D+", "", regex=True)
    return _sha256_unique(digits.mask(digits == ""))
