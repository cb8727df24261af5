"""Identity stitching: one person, not five cookies.

Identifiers that appear together on a row (a device id and a login, a hashed e-mail and a CRM
id) belong to the same person. The persons are the connected components of that co-occurrence
graph. Two things would wrongly merge people, and both are blocked from linking:

- *placeholders*: values such as ``"unknown"``, ``"0"`` or the hash of an empty string;
- *super-nodes*: an identifier seen with implausibly many identifiers of one other type. The
  rule is directional, because the plausible number depends on the type *linked to*:
  person-level identifiers (``user_id``, ``email_hash``, ``crm_id``, ``loyalty_id``) name one
  person, so an identifier seen with more than ``max_links`` (default 3) values of one of them
  is shared (a shop kiosk with many logins, a family tablet, an e-mail placeholder on many CRM
  records). Device-level identifiers (``device_id``, ``cookie_id``) churn, so a login may be seen
  with many of them; only more than ``max_device_links`` (default 50) is implausible.

Direct links are not the whole story, so three *guards* look at the data as a whole:

- *placeholder patterns*: a value that, lower-cased and stripped of spaces, punctuation and
  symbols, is empty (``-``, ``?``, ``---``), only zeros or only x's (``0000``, ``xxx``), or a
  word for "missing" in one of several languages (``(null)``, ``#NV``, ``N/A``, ``n.v.``,
  ``k.A.``, ``sin dato``, ``nicht verfügbar``, ``inconnu``, ``(not set)``…; see
  :data:`DEFAULT_PLACEHOLDER_PATTERNS`) is blocked ("placeholder pattern");
- *data-driven placeholders*: an identifier seen with far more distinct device-level
  identifiers of one type than the typical identifier of its own type is blocked ("links N
  unrelated rows"). The limit for type T is ``max(placeholder_min_links, placeholder_factor ×
  p99)``, p99 being the 99th percentile, over the identifiers of type T, of the number of
  distinct identifier combinations they appear in (default ``max(20, 5 × p99)``). The 99th
  percentile ignores a few odd values but follows the data (where cookies churn, logins are
  seen with many, and the limit rises); the floor of 20 keeps a busy real user (hundreds of
  rows on a few devices and a dozen cookies) linked. Rows alone never block: a busy user has
  many rows but few partners. (Partners of a person-level type are ``max_links``' business.)
- *chains*: a person (connected component) holding more than ``max_person_ids`` (default
  ``max_links``, 3) identifiers of one person-level type is split at its bridges: the
  identifiers of other types seen with two or more of those (a device shared by two logins,
  an e-mail shared by two CRM records) are blocked ("bridges N persons (chain)"), and the
  components are solved again, up to 50 rounds. Where no identifier is seen with two of them
  directly (u1 - d1 - e1 - d2 - u2), the identifiers through which a group of other
  identifiers touches them are blocked (d1 and d2; e1 stays, a person of its own). So 2,500
  logins chained through devices each shared by two of them become 2,500 persons, while a
  household — a family tablet shared by two or three logins — stays one person, as
  ``max_links`` already lets it (``max_person_ids=1`` splits it; the tablet's rows without a
  login then have no person). ``max_person_ids=None`` turns the guard off.

Identifier values are compared exactly, as text (``analysis.load_events`` has trimmed them);
an empty value is missing. Placeholders are matched case-insensitively.
A blocked identifier still stays on its rows; it just does not link them. Rows whose only
identifiers are blocked get no ``person_id`` (NA), and the summary counts them.

The heavy part (numbering identifiers, distinct identifier combinations, link counts) runs on
integer codes in Arrow, polars and compiled loops (numba) by default (``engine="polars"``,
:mod:`.fast`, :mod:`.kernels`), or in the query engine (``engine="duckdb"`` or ``"spark"``, ibis);
only the compact graph of distinct identifier pairs is solved in memory: by a compiled
union-find on the default path, by ``scipy.sparse.csgraph.connected_components`` on the engines'.

The package: :mod:`.stitching` (:func:`stitch`, :func:`stitch_identities`), :mod:`.guards`
(placeholders, super-node link counts, data-driven placeholders, the chain guard) and
:mod:`.result` (:class:`StitchResult`).
"""

from analysis.identity.guards import (
    DEFAULT_PLACEHOLDER_PATTERNS,
    DEFAULT_PLACEHOLDERS,
    DEVICE_TYPES,
    PLACEHOLDER_FACTOR,
    PLACEHOLDER_MIN_LINKS,
)
from analysis.identity.result import StitchResult
from analysis.identity.stitching import stitch, stitch_identities
from analysis.identity.streaming import TableStitch, stitch_table

__all__ = [
    "DEFAULT_PLACEHOLDERS",
    "DEFAULT_PLACEHOLDER_PATTERNS",
    "DEVICE_TYPES",
    "PLACEHOLDER_FACTOR",
    "PLACEHOLDER_MIN_LINKS",
    "StitchResult",
    "TableStitch",
    "stitch",
    "stitch_identities",
    "stitch_table",
]
