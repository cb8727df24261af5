"""A straightforward, vectorised pandas implementation of stitching + journeys (the baseline).

Same rules as ``analysis.identity.stitch`` and ``analysis.journeys.build_journeys`` — no row
loops and no ``groupby().apply``: melt, merge, ``groupby`` aggregations, shifts and cumsums,
scipy for the connected components (as the candidate). The benchmark checks that both give the
same transition and path counts, so the comparison is between equal work.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from analysis.config import MAX_DEVICE_LINKS, MAX_LINKS
from analysis.identity import DEFAULT_PLACEHOLDERS, DEVICE_TYPES
from analysis.schema import CONVERSION, DROPOFF, IDENTIFIER_COLUMNS, OPEN, START


def stitch(
    events: pd.DataFrame, max_links: int = MAX_LINKS, max_device_links: int = MAX_DEVICE_LINKS
) -> np.ndarray:
    cols = [c for c in IDENTIFIER_COLUMNS if c in events.columns]
    # one node per (type, value): factorize each identifier column on its own (hash-based,
    # unsorted) and offset the codes -- far cheaper than factorizing (type, value) pairs
    rows, nodes, tcodes, values, types = [], [], [], [], []
    offset = 0
    for i, t in enumerate(cols):
        code, uniq = pd.factorize(events[t].to_numpy())
        present = code >= 0
        rows.append(np.flatnonzero(present))
        nodes.append(code[present] + offset)
        tcodes.append(np.full(int(present.sum()), i, dtype=np.int8))
        values.append(np.asarray(uniq, dtype=object))
        types.append(np.full(len(uniq), i, dtype=np.int8))
        offset += len(uniq)
    long = pd.DataFrame(
        {
            "row": np.concatenate(rows),
            "node": np.concatenate(nodes),
            "t": pd.Categorical.from_codes(np.concatenate(tcodes), categories=cols),
        }
    )
    node_type = pd.Series(pd.Categorical.from_codes(np.concatenate(types), categories=cols))
    node_val = pd.Series(np.concatenate(values))
    pairs = long[["row", "node"]].merge(long[["row", "node", "t"]], on="row", suffixes=("", "_b"))
    pairs = pairs[
        node_type.cat.codes.to_numpy()[pairs["node"].to_numpy()] != pairs["t"].cat.codes.to_numpy()
    ]
    pairs = pairs.drop_duplicates(["node", "node_b"])
    per_type = pairs.groupby(["node", "t"], observed=True).size().rename("k").reset_index()
    limit = np.where(per_type["t"].astype(str).isin(DEVICE_TYPES), max_device_links, max_links)
    over = per_type.loc[per_type["k"].to_numpy() > limit, "node"].unique()
    n_nodes = int(long["node"].max()) + 1
    is_super = np.zeros(n_nodes, dtype=bool)
    is_super[over] = True
    placeholder = node_val.str.lower().isin(DEFAULT_PLACEHOLDERS).to_numpy()
    blocked = placeholder | is_super
    ok = long[~blocked[long["node"].to_numpy()]]
    anchor = ok.groupby("row")["node"].min()
    e = ok.join(anchor.rename("anchor"), on="row")
    e = e[e["node"] != e["anchor"]].drop_duplicates(["anchor", "node"])
    g = coo_matrix((np.ones(len(e)), (e["anchor"], e["node"])), shape=(n_nodes, n_nodes))
    _, label = connected_components(g, directed=False)
    person = np.full(len(events), -1, dtype=np.int64)
    person[anchor.index.to_numpy()] = label[anchor.to_numpy()]
    return person


def journeys(events: pd.DataFrame, person: np.ndarray, inactivity_days=30.0, lookback_days=30.0):
    ev = events[["event_id", "channel", "stage", "conversion", "revenue", "segment"]].copy()
    ev["us"] = (
        events["timestamp"].astype("datetime64[us, UTC]").astype("int64")
    )  # int64 µs, vectorised
    ev["person"] = person
    ev = ev[ev["person"] >= 0]
    # order by (person, time, event_id): an integer lexsort, then the rare exact ties (same
    # person and microsecond) put in event_id order -- not a sort_values of the whole frame
    p_, u_ = ev["person"].to_numpy(), ev["us"].to_numpy()
    order = np.lexsort((u_, p_))
    ps, us_ = p_[order], u_[order]
    tie = np.zeros(len(order), dtype=bool)
    dup = (ps[1:] == ps[:-1]) & (us_[1:] == us_[:-1])
    tie[1:] |= dup
    tie[:-1] |= dup
    if tie.any():
        pos = np.flatnonzero(tie)
        group = np.cumsum(np.concatenate([[True], ~dup]))[pos]
        eid = ev["event_id"].to_numpy()[order[pos]]
        fix = pd.DataFrame({"g": group, "e": eid, "o": order[pos]}).sort_values(
            ["g", "e"], kind="stable"
        )
        order[pos] = fix["o"].to_numpy()
    ev = ev.iloc[order]
    same = ev["person"].to_numpy()[1:] == ev["person"].to_numpy()[:-1]
    gap = np.diff(ev["us"].to_numpy()) >= int(inactivity_days * 86400e6)
    prev_conv = ev["conversion"].to_numpy()[:-1]
    new = np.concatenate([[True], ~same | gap | prev_conv])
    ev["journey"] = np.cumsum(new)
    as_of = ev["us"].max()
    j = ev.groupby("journey").agg(
        person=("person", "first"),
        segment=("segment", "first"),
        start=("us", "min"),
        end=("us", "max"),
        n=("event_id", "size"),
        converted=("conversion", "any"),
        revenue=("revenue", "sum"),
    )
    j["outcome"] = np.where(
        j["converted"],
        "converted",
        np.where(as_of - j["end"] < inactivity_days * 86400e6, "open", "dropoff"),
    )
    # stage runs and transitions
    st = ev[ev["stage"].notna()]
    jn = st["journey"].to_numpy()
    sv = st["stage"].to_numpy()
    run_start = np.concatenate([[True], (jn[1:] != jn[:-1]) | (sv[1:] != sv[:-1])])
    runs = st[run_start]
    rj = runs["journey"].to_numpy()
    first = np.concatenate([[True], rj[1:] != rj[:-1]])
    last = np.concatenate([rj[1:] != rj[:-1], [True]])
    frm = np.where(first, START, np.concatenate([[START], runs["stage"].to_numpy()[:-1]]))
    into = pd.DataFrame(
        {
            "segment": runs["segment"].to_numpy(),
            "journey": rj,
            "from_stage": frm,
            "to_stage": runs["stage"].to_numpy(),
        }
    )
    seg_first = j["segment"]
    into["segment"] = seg_first.reindex(into["journey"]).to_numpy()
    lr = runs[last]
    state = (
        j["outcome"]
        .reindex(lr["journey"])
        .map({"converted": CONVERSION, "dropoff": DROPOFF, "open": OPEN})
        .to_numpy()
    )
    out = pd.DataFrame(
        {
            "segment": seg_first.reindex(lr["journey"]).to_numpy(),
            "from_stage": lr["stage"].to_numpy(),
            "to_stage": state,
        }
    )
    trans = (
        pd.concat([into.drop(columns="journey"), out])
        .groupby(["segment", "from_stage", "to_stage"])
        .size()
        .rename("n")
        .reset_index()
    )
    # channel paths within the lookback window, closed journeys
    end = j["end"].reindex(ev["journey"]).to_numpy()
    closed = (j["outcome"] != "open").reindex(ev["journey"]).to_numpy()
    w = ev[(ev["us"].to_numpy() >= end - int(lookback_days * 86400e6)) & closed]
    path = w.groupby("journey", sort=False)["channel"].agg(" > ".join)
    pj = j.loc[path.index]
    paths = (
        pd.DataFrame(
            {
                "path": path.to_numpy(),
                "conv": pj["converted"].to_numpy(),
                "value": pj["revenue"].to_numpy(),
            }
        )
        .groupby("path")
        .agg(conversions=("conv", "sum"), total=("conv", "size"), value=("value", "sum"))
        .reset_index()
    )
    paths["nulls"] = paths["total"] - paths["conversions"]
    return j, trans, paths[["path", "conversions", "nulls", "value"]]
