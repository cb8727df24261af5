"""Reading a GA4 BigQuery export (``events_*``, Parquet or NDJSON).

Reading a GA4 BigQuery export (``events_*``, Parquet or NDJSON) into flat fields, with
``event_params`` as a long table and the rows whose records are malformed rejected.

Used by :func:`analysis.sources.ga4.read_ga4`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.schema import DataError, combine_errors
from analysis.sources._adapter import (
    Rejected,
    read_ndjson,
    read_parquet_table,
)

#: event_params keys read by default.
PARAMS = (
    "ga_session_id",
    "ga_session_number",
    "page_location",
    "source",
    "medium",
    "campaign",
    "value",
)

#: Nested fields read (dotted path in the export).
FIELDS: dict[str, str] = {
    "event_date": "event_date",
    "event_timestamp": "event_timestamp",
    "event_name": "event_name",
    "user_id": "user_id",
    "user_pseudo_id": "user_pseudo_id",
    "cts_source": "collected_traffic_source.manual_source",
    "cts_medium": "collected_traffic_source.manual_medium",
    "cts_campaign": "collected_traffic_source.manual_campaign_name",
    "ts_source": "traffic_source.source",
    "ts_medium": "traffic_source.medium",
    "ts_campaign": "traffic_source.name",
    "device_category": "device.category",
    "purchase_revenue": "ecommerce.purchase_revenue",
    "transaction_id": "ecommerce.transaction_id",
}
STRUCTS = ("collected_traffic_source", "traffic_source", "device", "ecommerce")
VALUE_FIELDS = ("string_value", "int_value", "float_value", "double_value")
#: Plausible event_timestamp range (µs): 2000-01-01 … 2100-01-01 UTC.
TS_RANGE = (946_684_800_000_000, 4_102_444_800_000_000)


# ============================================================================================
# Reading: both formats → flat fields, event_params as a long table, row problems
# ============================================================================================


class RawExport:
    """What a reader hands on to the touchpoint rows.

    What a reader hands on: ``fields`` (one column per :data:`FIELDS` key present),
    ``params`` (long: pos, key, string_value, int_value, float_value, double_value),
    ``rows`` (row numbers for messages), ``rejects``, ``absent`` (nested fields missing).
    """

    def __init__(self, n: int, rows: np.ndarray, blank: list[int]) -> None:
        self.n = n
        self.rows = rows
        self.blank = blank
        self.fields: dict[str, pd.Series] = {}
        self.params = pd.DataFrame(columns=["pos", "key", *VALUE_FIELDS])
        self.rejects: list[Rejected] = []
        self.absent: list[str] = []
        self.has_event_params = False


def missing_columns(have: set[str], file: str) -> None:
    """Refuse an export that lacks the columns every GA4 event has."""
    errors = []
    for col in ("event_timestamp", "event_name", "event_params"):
        if col not in have:
            errors.append(
                DataError(
                    f"GA4 export: no {col!r} column",
                    file=file,
                    column=col,
                    fix="export the whole events_* table (SELECT *); GA4 exports always have "
                    f"{col}"
                    + (
                        " (the event parameters, needed for sessions and pages)"
                        if col == "event_params"
                        else ""
                    ),
                )
            )
    if not {"user_pseudo_id", "user_id"} & have:
        errors.append(
            DataError(
                "GA4 export: neither 'user_pseudo_id' nor 'user_id': no identifier",
                file=file,
                column="user_pseudo_id",
                fix="export the whole events_* table (SELECT *), including user_pseudo_id",
            )
        )
    if errors:
        raise combine_errors(errors, file=file)


def from_parquet(path: Path) -> RawExport:
    """Return the fields of a GA4 Parquet export, ``event_params`` as a long table.

    Long because the nested RECORD columns are flattened with pyarrow in one pass whose
    steps share the table.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    file = str(path)
    table = read_parquet_table(path, "GA4 events table")
    n = table.num_rows
    if n == 0:
        raise DataError(
            "the file has no rows", file=file, fix="check the export: it produced no events"
        )
    missing_columns(set(table.column_names), file)
    raw = RawExport(n, np.arange(1, n + 1, dtype="int64"), [])

    def leaf(dotted: str) -> pd.Series | None:
        top, *rest = dotted.split(".")
        if top not in table.column_names:
            return None
        arr = table.column(top).combine_chunks()
        valid = np.ones(n, dtype=bool)
        walked = top
        for part in rest:
            if not pa.types.is_struct(arr.type):
                raise DataError(
                    f"GA4 export: column {walked!r} is {arr.type}, expected a RECORD with the field {part!r}",
                    file=file,
                    column=walked,
                    fix="export the table as BigQuery writes it (nested RECORDs kept)",
                )
            if arr.type.get_field_index(part) < 0:
                return None
            valid &= arr.is_valid().to_numpy(zero_copy_only=False)
            arr = arr.field(part)
            walked += "." + part
        s = arr.to_pandas()
        return s.where(valid, None) if not valid.all() else s

    for name, dotted in FIELDS.items():
        s = leaf(dotted)
        if s is None:
            raw.absent.append(dotted)
        else:
            raw.fields[name] = s.reset_index(drop=True)

    ep = table.column("event_params").combine_chunks()
    if not (pa.types.is_list(ep.type) or pa.types.is_large_list(ep.type)) or not pa.types.is_struct(
        ep.type.value_type
    ):
        raise DataError(
            f"GA4 export: event_params is {ep.type}, expected a repeated RECORD (list of key/value)",
            file=file,
            column="event_params",
            fix="export the table as BigQuery writes it (nested RECORDs kept)",
        )
    elem = ep.type.value_type
    missing = [f for f in ("key", "value") if elem.get_field_index(f) < 0]
    if missing:
        raise DataError(
            f"GA4 export: event_params elements have no {' or '.join(repr(m) for m in missing)} field "
            f"(they have: {', '.join(f.name for f in elem)})",
            file=file,
            column="event_params",
            fix="export the full events_* table again; each event_params element is {key, value: "
            "{string_value, int_value, float_value, double_value}}",
        )
    raw.has_event_params = True
    flat = ep.flatten()
    parent = pc.list_parent_indices(ep).to_numpy()
    vtype = elem.field("value").type
    if not pa.types.is_struct(vtype):
        raise DataError(
            f"GA4 export: event_params.value is {vtype}, expected a RECORD of typed values",
            file=file,
            column="event_params.value",
            fix="export the full events_* table again",
        )
    value = flat.field("value")
    long = {
        "pos": parent,
        "key": flat.field("key").to_pandas(),
        "_elem_null": ~flat.is_valid().to_numpy(zero_copy_only=False),
        "_value_null": ~value.is_valid().to_numpy(zero_copy_only=False),
    }
    for f in VALUE_FIELDS:
        long[f] = value.field(f).to_pandas() if vtype.get_field_index(f) >= 0 else None
    raw.params = pd.DataFrame(long)
    raw.params["_index"] = raw.params.groupby("pos").cumcount() + 1
    return raw


def from_ndjson(path: Path) -> RawExport:
    """Return the fields of a GA4 NDJSON export, rows whose records are malformed rejected.

    Long because each nested part of a JSON record (structs, event_params) is checked and
    flattened in turn on the same records.
    """
    file = str(path)
    records, rows, blank = read_ndjson(path, "GA4 events table")
    n = len(records)
    df = pd.json_normalize(records, sep=".")
    have = {c.split(".")[0] for c in df.columns}
    missing_columns(have, file)
    raw = RawExport(n, rows, blank)

    for struct in STRUCTS:  # a RECORD written as a plain value
        if struct in df.columns:
            bad = np.flatnonzero(df[struct].notna().to_numpy())
            if len(bad):
                raw.rejects.append(
                    Rejected(
                        f"{struct} not a record",
                        [
                            f"{struct} is {df[struct].iloc[p]!r}, expected a JSON object (a RECORD)"
                            for p in bad
                        ],
                        struct,
                        pos=bad,
                    )
                )
    for name, dotted in FIELDS.items():
        if dotted in df.columns:
            raw.fields[name] = df[dotted].reset_index(drop=True)
        else:
            raw.absent.append(dotted)

    ep = df["event_params"]
    is_list = ep.map(lambda v: isinstance(v, list)).to_numpy(dtype=bool)
    not_list = np.flatnonzero(ep.notna().to_numpy() & ~is_list)
    if len(not_list):
        raw.rejects.append(
            Rejected(
                "event_params not a list",
                [
                    f"event_params is {ep.iloc[p]!r}, expected a list of {{key, value}} objects"
                    for p in not_list
                ],
                "event_params",
                pos=not_list,
            )
        )
    raw.has_event_params = True
    elems = ep[is_list].explode()
    elems = elems[elems.notna()]  # an empty list explodes to one NaN
    pos = elems.index.to_numpy(dtype="int64")
    index = elems.groupby(level=0).cumcount().to_numpy() + 1
    is_obj = elems.map(lambda v: isinstance(v, dict)).to_numpy(dtype=bool)
    if (~is_obj).any():
        bad = np.unique(pos[~is_obj])
        first = pd.Series(elems[~is_obj].to_numpy(), index=pos[~is_obj]).groupby(level=0).first()
        idx = pd.Series(index[~is_obj], index=pos[~is_obj]).groupby(level=0).first()
        raw.rejects.append(
            Rejected(
                "bad event_params element",
                [
                    f"event_params element {idx[p]} is {first[p]!r}, expected an object {{key, value}}"
                    for p in bad
                ],
                "event_params",
                pos=bad,
            )
        )
    norm = pd.json_normalize(elems[is_obj].tolist(), sep=".") if is_obj.any() else pd.DataFrame()
    long = pd.DataFrame({"pos": pos[is_obj], "_index": index[is_obj]})
    long["key"] = norm["key"].to_numpy() if "key" in norm.columns else None
    long["_elem_null"] = False
    # value must be an object: {"value": "x"} leaves a plain "value" column
    plain = (
        norm["value"].notna().to_numpy() if "value" in norm.columns else np.zeros(len(long), bool)
    )
    has_value = np.zeros(len(long), dtype=bool)
    for f in VALUE_FIELDS:
        col = f"value.{f}"
        long[f] = norm[col].to_numpy() if col in norm.columns else None
        if col in norm.columns:
            has_value |= norm[col].notna().to_numpy()
    long["_value_null"] = ~has_value & ~plain
    long["_value_plain"] = plain
    if plain.any():
        p = long.loc[plain]
        bad = p.drop_duplicates("pos")
        raw.rejects.append(
            Rejected(
                "bad event_params element",
                [
                    f"event_params element {i} ({k!r}) has a plain value, expected an object "
                    "{string_value|int_value|float_value|double_value: …}"
                    for i, k in zip(bad["_index"], bad["key"], strict=True)
                ],
                "event_params",
                pos=bad["pos"].to_numpy(),
            )
        )
    raw.params = long
    return raw


def params_problems(raw: RawExport) -> None:
    """Elements that are null or have no key: reject the row, naming the element."""
    p = raw.params
    if not len(p):
        return
    keyless = (p["key"].isna() | (p["key"].astype("str").str.strip() == "")).to_numpy() & ~p[
        "_elem_null"
    ].to_numpy()
    for mask, category, text in (
        (
            p["_elem_null"].to_numpy(dtype=bool),
            "bad event_params element",
            "is null, expected {key, value}",
        ),
        (keyless, "event_params element without key", "has no key"),
    ):
        if mask.any():
            first = p.loc[mask].drop_duplicates("pos")
            raw.rejects.append(
                Rejected(
                    category,
                    [
                        f"event_params element {i} {text} (each element needs a key such as 'ga_session_id')"
                        for i in first["_index"]
                    ],
                    "event_params",
                    pos=first["pos"].to_numpy(dtype="int64"),
                )
            )


def pivot_params(raw: RawExport, keys: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wanted params, one column each: as text (first typed value given) and as numbers."""
    p = raw.params
    idx = pd.RangeIndex(raw.n)
    empty = pd.DataFrame(index=idx, columns=list(keys), dtype=object)
    if not len(p):
        return empty, empty.astype("float64")
    p = p[p["key"].isin(keys)].drop_duplicates(["pos", "key"], keep="first")
    text = pd.Series(np.nan, index=p.index, dtype=object)
    num = pd.Series(np.nan, index=p.index, dtype="float64")
    for f in VALUE_FIELDS:  # the first typed value present
        v = p[f]
        if v is None or not isinstance(v, pd.Series):
            continue
        present = v.notna() & text.isna()
        if f == "string_value":
            text = text.mask(present, v.astype(object))
            num = num.fillna(pd.to_numeric(v.where(present), errors="coerce"))
        else:
            n_v = pd.to_numeric(v, errors="coerce")
            as_text = n_v.astype("Int64").astype(str) if f == "int_value" else n_v.astype(str)
            text = text.mask(present & n_v.notna(), as_text)
            num = num.fillna(n_v.where(present))
    frame = p[["pos", "key"]].assign(text=text.to_numpy(), num=num.to_numpy())
    wide_t = frame.pivot(index="pos", columns="key", values="text").reindex(
        index=idx, columns=list(keys)
    )
    wide_n = frame.pivot(index="pos", columns="key", values="num").reindex(
        index=idx, columns=list(keys)
    )
    return wide_t, wide_n.astype("float64")
