"""Identities: the devices, logins, e-mail hashes, CRM and loyalty ids that each row carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from analysis.synth._arrays import (
    cum_table,
    digits,
    draw,
    fixed_width,
    from_fixed_width,
    group_start,
)
from analysis.synth.config import CHANNEL_INDEX, CHANNELS, ONLINE_CHANNELS

HUB_TYPES = ("user_id", "email_hash", "crm_id", "loyalty_id", "device_id")


def first_per_person(flag: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Positions of the first flagged row of each person; rows sorted by person (then time)."""
    idx = np.flatnonzero(flag)
    p = person[idx]
    first = np.ones(len(idx), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    return idx[first]


@dataclass
class _RowFlags:
    """What decides a row's identifiers: its channel and kind."""

    online: np.ndarray
    touch: np.ndarray
    purchase: np.ndarray
    email: np.ndarray
    store: np.ndarray
    call: np.ndarray
    event: np.ndarray

    @classmethod
    def of(cls, ch: np.ndarray, kind: np.ndarray) -> _RowFlags:
        """Return the flags of rows with these channels and kinds."""
        return cls(
            online=np.array([c in ONLINE_CHANNELS for c in CHANNELS])[ch],
            touch=kind == 0,
            purchase=kind == 2,
            email=ch == CHANNEL_INDEX["email"],
            store=ch == CHANNEL_INDEX["store"],
            call=ch == CHANNEL_INDEX["call_center"],
            event=ch == CHANNEL_INDEX["event"],
        )


def _person_attributes(
    n_persons: int, opts: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw every person's number of devices, whether they have a login and a loyalty card."""
    zeros = np.zeros(n_persons, np.int64)
    n_dev = 1 + draw(
        cum_table(np.asarray(opts["device_probs"], float)[None, :]),
        zeros,
        rng.random(n_persons),
        3,
    )
    has_user = (n_dev >= 2) | (rng.random(n_persons) < float(opts["user_prob"]))
    has_loy = rng.random(n_persons) < float(opts["loyalty_prob"])
    return n_dev, has_user, has_loy


def _kiosk_users(
    person: np.ndarray,
    store_touch: np.ndarray,
    n_persons: int,
    opts: dict[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Return every person's kiosk (-1: none): a share of all persons, among store visitors."""
    cands = np.flatnonzero(np.bincount(person[store_touch], minlength=n_persons))
    n_k = min(len(cands), round(float(opts["kiosk_share"]) * n_persons))
    chosen = rng.permutation(cands)[:n_k]
    kiosk = np.full(n_persons, -1, dtype=np.int64)
    kiosk[chosen] = np.arange(n_k) % int(opts["n_kiosks"])
    return kiosk


def _kiosk_rows(
    person: np.ndarray,
    store_touch: np.ndarray,
    kiosk: np.ndarray,
    opts: dict[str, Any],
    rng: np.random.Generator,
) -> np.ndarray:
    """Flag the store touches made on a kiosk (a kiosk user's first store touch always is)."""
    pk = kiosk[person]
    kiosk_row = store_touch & (pk >= 0)
    kiosk_row &= rng.random(len(person)) < float(opts["kiosk_row_prob"])
    kiosk_row[first_per_person(store_touch & (pk >= 0), person)] = True
    return kiosk_row


def _devices(
    person: np.ndarray,
    online: np.ndarray,
    kiosk_row: np.ndarray,
    kiosk: np.ndarray,
    n_dev: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Return device codes and own-device numbers: a person's first online rows cycle through all."""
    n_persons = len(n_dev)
    c_excl = np.cumsum(online) - online
    rank = c_excl - c_excl[group_start(person)]
    nd = n_dev[person]
    dev_k = np.where(
        rank < nd, rank, np.minimum((rng.random(len(person)) * nd).astype(np.int64), nd - 1)
    )
    dev = np.where(online, person * 3 + dev_k, -1)
    dev = np.where(kiosk_row, 3 * n_persons + kiosk[person], dev)
    return dev, dev_k


def _identifiers(
    person: np.ndarray,
    flags: _RowFlags,
    kiosk_row: np.ndarray,
    has_user: np.ndarray,
    has_loy: np.ndarray,
    opts: dict[str, Any],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return which rows carry the login, the e-mail hash (1 real, 2 "unknown"), CRM and loyalty id."""
    n = len(person)
    hu = has_user[person]
    hl = has_loy[person]
    online, touch, purchase = flags.online, flags.touch, flags.purchase
    user = online & touch & ~flags.email & hu & (rng.random(n) < float(opts["login_prob"]))
    user |= (purchase & online & hu) | (kiosk_row & hu)
    loy = (flags.store & ~kiosk_row & hl) | (kiosk_row & ~hu)
    email = np.zeros(n, dtype=np.int8)  # 0 none, 1 real, 2 "unknown"
    email[flags.email | flags.event | (purchase & online)] = 1
    store_plain = flags.store & ~kiosk_row
    email[store_plain & ~hl] = 1
    email[store_plain & hl & touch & (rng.random(n) < float(opts["store_email_prob"]))] = 1
    email[flags.call] = np.where(
        rng.random(int(flags.call.sum())) < float(opts["unknown_email_share"]), 2, 1
    )
    crm = flags.call
    return user, email, crm, loy


def _hubs(
    person: np.ndarray,
    n_persons: int,
    has_user: np.ndarray,
    email: np.ndarray,
    crm: np.ndarray,
    loy: np.ndarray,
    attrs: Mapping[str, np.ndarray] | None,
) -> np.ndarray:
    """Return every person's hub: the login if any, else e-mail hash, else CRM id, else loyalty id."""

    def appears(flag: np.ndarray) -> np.ndarray:
        return np.bincount(person[flag], minlength=n_persons) > 0

    e_app, c_app, l_app = appears(email == 1), appears(crm), appears(loy)
    hub = np.where(has_user, 0, np.where(e_app, 1, np.where(c_app, 2, np.where(l_app, 3, 4))))
    if attrs is not None:  # keep the hub of the person's earlier rows when they had one
        hub = np.where(attrs["hub"] != 4, attrs["hub"], hub)
    return hub


def draw_identities(
    person: np.ndarray,
    ch: np.ndarray,
    kind: np.ndarray,
    n_persons: int,
    opts: dict[str, Any],
    rng: np.random.Generator,
    attrs: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Draw the identifier codes of rows sorted by (person, time).

    Returns codes (``-1`` = missing): ``dev`` (``person * 3 + k`` or ``3 * n_persons + kiosk``),
    ``user``/``crm``/``loy`` (the person), ``email`` (the person, or ``n_persons`` for "unknown"),
    and the person attributes. ``attrs`` (the person attributes of an earlier call) gives
    identifiers to further rows of the same persons: nothing person-level is drawn again, and a
    person's hub stays the one of the earlier rows (when those had one).
    """
    if attrs is None:
        n_dev, has_user, has_loy = _person_attributes(n_persons, opts, rng)
    else:
        n_dev, has_user, has_loy = attrs["n_dev"], attrs["has_user"], attrs["has_loy"]
    flags = _RowFlags.of(ch, kind)
    store_touch = flags.touch & flags.store
    if attrs is None:
        kiosk = _kiosk_users(person, store_touch, n_persons, opts, rng)
        has_loy |= (kiosk >= 0) & ~has_user
    else:
        kiosk = attrs["kiosk"]
    kiosk_row = _kiosk_rows(person, store_touch, kiosk, opts, rng)
    dev, dev_k = _devices(person, flags.online, kiosk_row, kiosk, n_dev, rng)
    user, email, crm, loy = _identifiers(person, flags, kiosk_row, has_user, has_loy, opts, rng)
    hub = _hubs(person, n_persons, has_user, email, crm, loy, attrs)

    # the first row of every identifier also carries the person's hub
    own_device = flags.online & ~kiosk_row
    firsts = np.concatenate(
        [first_per_person(own_device & (dev_k == k), person) for k in range(3)]
        + [first_per_person(f, person) for f in (user, email == 1, crm, loy)]
    )
    h = hub[person[firsts]]
    user[firsts[h == 0]] = True
    email[firsts[h == 1]] = 1
    crm[firsts[h == 2]] = True
    loy[firsts[h == 3]] = True

    return {
        "dev": dev,
        "user": np.where(user, person, -1),
        "email": np.where(email == 1, person, np.where(email == 2, n_persons, -1)),
        "crm": np.where(crm, person, -1),
        "loy": np.where(loy, person, -1),
        "n_dev": n_dev,
        "has_user": has_user,
        "has_loy": has_loy,
        "kiosk": kiosk,
        "hub": hub,
    }


@dataclass(frozen=True)
class IdCategories:
    """The identifier strings that the codes of :func:`draw_identities` index (Arrow arrays)."""

    device: pa.Array  # persons' devices (3 per person), then the kiosks
    email: pa.Array  # persons' e-mail hashes, then "unknown"
    user: pa.Array
    crm: pa.Array
    loyalty: pa.Array
    person: pa.Array  # the true persons' names


def identifier_categories(n_persons: int, n_kiosks: int) -> IdCategories:
    """Return the identifier strings of ``n_persons`` persons and ``n_kiosks`` kiosks."""
    width = digits(n_persons)
    persons = np.arange(n_persons)
    devices = pa.concat_arrays(
        [
            fixed_width(
                3 * n_persons,
                "dev-",
                (np.repeat(persons, 3), width),
                "-",
                (np.tile([1, 2, 3], n_persons), 1),
            ),
            kiosk_names(n_kiosks),
        ]
    )  # large_string, like every category array below
    hashes = email_hashes(persons)
    return IdCategories(
        device=devices,
        email=pa.concat_arrays([hashes, pa.array(["unknown"], hashes.type)]),
        user=fixed_width(n_persons, "u-", (persons, width)),
        crm=fixed_width(n_persons, "crm-", (persons, width)),
        loyalty=fixed_width(n_persons, "loy-", (persons, width)),
        person=fixed_width(n_persons, "p", (persons, width)),
    )


def kiosk_names(n_kiosks: int) -> pa.Array:
    """Return the kiosks' device ids (``kiosk-01``, ``kiosk-02``, …)."""
    return fixed_width(n_kiosks, "kiosk-", (np.arange(1, n_kiosks + 1), 2))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def email_hashes(persons: np.ndarray) -> pa.Array:
    """64-hex-digit pseudo-hashes (sha256-looking) of the persons' fake e-mail addresses.

    Four rounds of the splitmix64 finaliser of the person number, vectorised; stable across
    seeds (an address always hashes to the same value) and unique per person.
    """
    x = np.asarray(persons, dtype=np.uint64)
    words = []
    with np.errstate(over="ignore"):
        for i in range(4):
            z = x * np.uint64(4) + np.uint64(i) + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            words.append(z ^ (z >> np.uint64(31)))
    b = np.stack(words, axis=1).astype(">u8").view(np.uint8).reshape(len(x), 32)
    chars = np.empty((len(x), 64), dtype=np.uint8)
    chars[:, 0::2] = _HEX[b >> 4]
    chars[:, 1::2] = _HEX[b & 15]
    return from_fixed_width(chars)
