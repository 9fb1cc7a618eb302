"""The run report: one self-contained HTML file beside a run's output.

A run saves what the report needs (``report-data.json``: the blocks, the
distance histograms, the candidates nearest the threshold) next to
``summary.json``; :func:`write_report` turns both into ``report.html`` —
plots written as inline SVG (bigalign.charts), no script, nothing fetched — so it
opens from disk, anywhere. ``bigalign report RUN_DIR`` rebuilds it.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .blocking.minhash import candidate_probability
from .charts import Axis, Chart, svg
from .comparisons import shown_levels
from .io import atomic_path
from .jobs import Job
from .pipeline.schema import SET_COLUMN
from .sql import redact
from .treatments import Treatment
from .values.sets import shown_tagged

__all__ = ["nearest_pairs", "save_report_data", "values_as_read", "write_report"]

# The candidates nearest the threshold that a report shows.
REPORT_ROWS = 30

_PACKAGES = ["bigalign", "dask", "distributed", "numpy", "pandas", "pyarrow", "rapidfuzz", "datasketch",
             "scikit-learn"]


def _describe_blocking(blocking: Any) -> list[dict]:
    members, start = [], 0
    for b in blocking.blockings():
        members.append({**b.describe(), "first_slot": start, "slots": b.n_slots})
        start += b.n_slots
    return members


def nearest_pairs(near: pd.DataFrame | None, threshold: float) -> pd.DataFrame | None:
    """The sampled candidates (:attr:`BlockStats.near_threshold`) that the report shows: the 30 nearest the
    threshold, each pair once (in a stable order: the same whatever the partitions)."""
    if near is None or not len(near):
        return None
    near = near.assign(gap=(near["distance"] - threshold).abs())
    near = near.sort_values(["gap", "align_id", "target_id"], kind="mergesort").drop(columns="gap")
    return near.drop_duplicates(["align_id", "target_id"]).head(REPORT_ROWS).reset_index(drop=True)


def values_as_read(client: Any, near: pd.DataFrame | None, threshold: float, align: Any, target: Any,
                   treatments: Sequence[Treatment]) -> pd.DataFrame | None:
    """The pairs the report shows, with each treatment's values as the sets hold them, each value with its
    language tag (``{Wien@de; Vienna@en} | Vienne@fr``), when a set keeps the tags (``literal_details``, or
    a treatment's ``lang``): the values of the samples are normalized and encoded, without their tags.
    ``align`` and ``target`` are the staged records (Dask frames), of which the pairs' alone are read."""
    near = nearest_pairs(near, threshold)
    if near is None or SET_COLUMN in align.columns:  # (several sets: an id names a record of each set)
        return near
    sides = {"align": (align, near["align_id"]), "target": (target, near["target_id"])}

    def tagged(t: Treatment) -> bool:
        return any(f"{t.side_attribute(side)}_lang" in frame.columns for side, (frame, _) in sides.items())

    shown_by = {i: t for i, t in enumerate(treatments) if not isinstance(t.attribute, tuple) and tagged(t)}
    if not shown_by:
        return near
    texts = {}
    for side, (frame, ids) in sides.items():
        id_column = frame.columns[0]
        columns = [c for t in shown_by.values() for c in (t.side_attribute(side), f"{t.side_attribute(side)}_lang")
                   if c in frame.columns]
        rows = client.compute(frame[frame[id_column].isin(ids.unique().tolist())][[id_column, *columns]]).result()
        records = rows.drop_duplicates(id_column).set_index(id_column)

        def as_read(x: Any, column: Any) -> str:
            if x not in records.index or column not in records.columns:
                return "∅"
            tags = records.at[x, f"{column}_lang"] if f"{column}_lang" in records.columns else None
            return shown_tagged(records.at[x, column], tags)

        texts[side] = {i: [as_read(x, t.side_attribute(side)) for x in ids] for i, t in shown_by.items()}
    for i, t in shown_by.items():
        near[f"{i}: {t} values as read"] = [f"{x} | {y}" for x, y in zip(texts["align"][i], texts["target"][i])]
    return near


def save_report_data(job: Job, run: Any, links: Any, run_dir: str) -> str:
    """Write ``report-data.json``: what the report shows beyond the summary
    (``run`` is the :class:`~bigalign.pipeline.AlignmentRun`, ``links`` the
    links written)."""
    from .pipeline import distance_bins, distance_histogram

    stats = run.stats
    # (with a learned model, the distance is 1 − the match probability, and so is the threshold)
    threshold = run.scorer.distance_threshold_

    def histogram(values: Any) -> list[int]:
        return distance_histogram(values, threshold).tolist()

    near = nearest_pairs(stats.near_threshold, threshold)
    near_records = [] if near is None else json.loads(near.to_json(orient="records"))
    data = {
        "job": _without_passwords(job.raw), "threshold": threshold, "uniq": job.alignment.uniq,
        "versions": {p: _version(p) for p in _PACKAGES},
        "treatments": [{"attribute": str(t), "metric": t.metric.name, "weight": t.weight,
                        "normalized": t.normalized} for t in job.alignment.treatments],
        "blocking": _describe_blocking(getattr(run, "blocking", None) or job.alignment.blocking),
        "block_size_histogram": {str(k): v for k, v in sorted(stats.block_size_histogram.items())},
        "largest_blocks": [list(map(_plain, b)) for b in stats.largest_blocks],
        "distance_edges": distance_bins(threshold).tolist(),
        "distance_histograms": {k: np.asarray(v).tolist() for k, v in stats.distance_histograms.items()},
        "link_distances": histogram(links["distance"]),
        "best_rejected_distances": None if run.best_rejected is None else histogram(run.best_rejected),
        "near_threshold": near_records,
    }
    path = os.path.join(run_dir, "report-data.json")
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    return path


def _without_passwords(value: Any) -> Any:
    """The job as read, with the password of any URL in it masked (a report is shared; a job file may not be)."""
    if isinstance(value, dict):
        return {k: _without_passwords(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_passwords(v) for v in value]
    return redact(value) if isinstance(value, str) else value


def _linked(distance: float | None, threshold: float) -> str:
    """Whether a pair of this distance is linked (a pair whose every value is missing has no distance: never)."""
    return "yes" if distance is not None and distance <= threshold else "no"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# -- plots -------------------------------------------------------------------
BLUE, RUST, GREEN, RED, GREY = "#4878a8", "#a86448", "#2a9d5c", "#c0504d", "#999999"


def _stages_plot(summary: dict) -> str:
    stages = summary["seconds"]
    memory = summary.get("memory") or {}
    seconds = Chart("Time per stage", x=Axis(categories=list(stages), rotate=True), y=Axis("seconds"), width=450,
                    height=300)
    seconds.bars("stage-seconds", range(len(stages)), list(stages.values()), BLUE)
    peaks = Chart("Peak memory per stage", x=Axis(categories=list(memory), rotate=True), y=Axis("MiB (all workers)"),
                  width=450, height=300)
    peaks.bars("stage-memory", range(len(memory)), [v / 2**20 for v in memory.values()], RUST)
    # (stages of a tenth of a second or more: a shorter one's ratio is the clock's reading, not the work)
    cpu = {stage: cpu / stages[stage] for stage, cpu in (summary.get("cpu_seconds") or {}).items()
           if stages.get(stage, 0) >= 0.1}
    cores = Chart("CPU seconds per wall second (cores busy)", x=Axis(categories=list(cpu), rotate=True),
                  y=Axis("cores"), width=450, height=300)
    cores.bars("stage-cores", range(len(cpu)), list(cpu.values()), GREEN)
    return svg([seconds, peaks, cores], columns=2)


def _cluster_sizes_plot(clusters: dict) -> str:
    sizes = {int(k): v for k, v in clusters["sizes"].items()}
    long_tail = max(sizes, default=1) > 30  # (chains show at the right)
    chart = Chart("Cluster sizes", x=Axis("records in the cluster", scale="log" if long_tail else "linear"),
                  y=Axis("clusters", scale="log"))
    # a bar a size wide on a linear axis; on a log axis, from the size to the next (bars of equal look)
    chart.bars("cluster-sizes", list(sizes), list(sizes.values()), BLUE,
               widths=[0.3 * s for s in sizes] if long_tail else 0.8)
    return svg([chart])


def _clusters_section(clusters: dict, path: str) -> list[str]:
    parts = ["<h2>Clusters</h2>",
             f"<p>{clusters['clusters']:,} clusters of {clusters['records']:,} records written to "
             f"<code>{html.escape(path)}</code>: {clusters['linked_records']:,} records in clusters of two or more; "
             f"{clusters['split_clusters']} clusters over <code>max_size</code> cut back at their weakest links; "
             f"the partitions' forests merged in {clusters['rounds']} "
             f"round{'' if clusters['rounds'] == 1 else 's'}.</p>"]
    quality = clusters.get("quality")
    if quality:
        parts.append(_table(["pairwise precision", "pairwise recall", "pairwise F1", "B-cubed precision",
                             "B-cubed recall", "B-cubed F1", "entities"],
                            [[quality[k] for k in ("pair_precision", "pair_recall", "pair_f1", "bcubed_precision",
                                                   "bcubed_recall", "bcubed_f1", "entities")]], "cluster-quality"))
    parts.append(f'<div class="plot" id="plot-cluster-sizes">{_cluster_sizes_plot(clusters)}</div>')
    parts.append("<h3>Largest clusters</h3>")
    parts.append(_table(["cluster id", "records", "some of its records"],
                        [[c["cluster_id"], c["size"], ", ".join(c["members"])] for c in clusters["largest"]],
                        "largest-clusters"))
    parts.append('<p class="note">A cluster much larger than the others is often a chain: records joined one to '
                 'the next by weak links. <code>[clusters] max_size</code> cuts such clusters back, and '
                 '<code>[clusters] threshold</code> clusters on stronger links than the linking\'s.</p>')
    return parts


def _block_sizes_plot(data: dict) -> str:
    histogram = {int(k): v for k, v in data["block_size_histogram"].items()}
    chart = Chart("Block sizes", x=Axis("candidate pairs in the block (align rows × target rows)", scale="log",
                                        base=2), y=Axis("blocks", scale="log"))
    # bin k holds the blocks of 2^k to 2^(k+1) pairs
    chart.bars("block-sizes", [2.0 ** k for k in histogram], list(histogram.values()), BLUE,
               widths=[2.0 ** k for k in histogram], align="edge")
    if not histogram:
        chart.note = "no block holds a pair"
    return svg([chart])


def _volumes_plot(summary: dict) -> str:
    b = summary["blocking"]
    labels = ["cross product", "block pairs", "candidate pairs", "links"]
    values = [b["cross_product"], b["block_pairs"], b["candidate_pairs"], summary["links"]]
    chart = Chart("From the cross product to the links", x=Axis(categories=labels), y=Axis("pairs", scale="log"))
    chart.bars("volumes", range(len(labels)), [max(v, 1) for v in values], [GREY, "#7fa8d0", BLUE, GREEN])
    return svg([chart])


def _s_curve_plot(member: dict) -> str:
    chart = Chart(f"MinHash LSH: {member['bands']} bands × {member['rows']} rows",
                  x=Axis("Jaccard similarity of the shingle sets", limits=(0, 1)), y=Axis("P(candidate)",
                                                                                        limits=(0, 1.02)),
                  width=500)
    s = np.linspace(0, 1, 201)
    chart.line("s-curve", s, np.asarray(candidate_probability(s, member["bands"], member["rows"])), BLUE)
    chart.vline("s-curve-threshold", member["threshold"], RUST, f"threshold {member['threshold']}")
    return svg([chart])


def _distances_plot(data: dict) -> str:
    """Links and best rejected candidates (with uniq), else every candidate
    split at the threshold; the last bin takes everything above."""
    edges = np.asarray(data["distance_edges"])
    widths = np.diff(edges)
    threshold = data["threshold"]
    if data.get("best_rejected_distances") is not None:
        shown = [("distances-linked", data["link_distances"], GREEN, "links"),
                 ("distances-rejected", data["best_rejected_distances"], "#bbbbbb",
                  "best candidate of an unlinked record")]
        title = "Scores of the links and of the best rejected candidates"
    else:
        counts = np.asarray(data["distance_histograms"].get("all", np.zeros(len(widths))))
        linked = edges[:-1] < threshold
        shown = [("distances-linked", np.where(linked, counts, 0), GREEN, "≤ threshold: links"),
                 ("distances-rejected", np.where(linked, 0, counts), "#bbbbbb", "> threshold: rejected")]
        title = "Scores of the candidate pairs"
    chart = Chart(title, x=Axis("global distance (last bin: everything above)"), y=Axis("pairs", scale="symlog"))
    for gid, counts, color, label in shown:
        chart.bars(gid, edges[:-1], [float(c) for c in counts], color, widths=list(widths), align="edge", label=label,
                   opacity=0.85)
    chart.vline("distances-threshold", threshold, RUST, f"threshold {threshold:g}")
    return svg([chart])


def threshold_curves(data: dict, true_pairs: int) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of 'every candidate under t' for each bin edge t."""
    true = np.cumsum(data["distance_histograms"]["true"])
    false = np.cumsum(data["distance_histograms"]["false"])
    precision = np.divide(true, true + false, out=np.zeros(len(true)), where=(true + false) > 0)
    recall = true / max(1, true_pairs)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(true)),
                   where=(precision + recall) > 0)
    return {"threshold": np.asarray(data["distance_edges"][1:]), "precision": precision, "recall": recall, "f1": f1}


def _quality_plot(curves: dict[str, np.ndarray], threshold: float) -> str:
    best = int(np.argmax(curves["f1"]))
    chart = Chart(f"Against the truth (best F1 {curves['f1'][best]:.4f} at {curves['threshold'][best]:.3g})",
                  x=Axis("threshold"), y=Axis(limits=(0, 1.02)))
    for name, color in (("precision", BLUE), ("recall", RUST), ("f1", GREEN)):
        chart.line(f"quality-{name}", curves["threshold"], curves[name], color, label=name)
    chart.point("quality-best", curves["threshold"][best], curves["f1"][best], "black",
                f"best F1 {curves['f1'][best]:.4f}")
    chart.vline("quality-threshold", threshold, GREY, f"threshold {threshold:g}")
    return svg([chart])


def _match_weights_plot(model: dict) -> str:
    """Splink's "match weights" chart: the prior's weight, then each level's log2(m/u), by treatment."""
    labels, weights = ["prior (starting match weight)"], [model["prior_weight"]]
    for t in model["treatments"]:
        labels += [f"{t['attribute']}: {t['levels'][level]}" for level in shown_levels(t)]
        weights += [t["weights"][level] for level in shown_levels(t)]
    # the first label at the top: categories count from the bottom
    chart = Chart("Match weights: what agreeing at each level is worth", x=Axis("match weight, log2(m / u)"),
                  y=Axis(categories=labels[::-1]), width=700, height=int(70 + 18 * len(labels)))
    for k, (label, weight) in enumerate(zip(labels, weights)):
        row = len(labels) - 1 - k
        chart.rect(f"match-weights-{k}", 0.0, weight, row - 0.4, row + 0.4,
                   GREY if k == 0 else GREEN if weight >= 0 else RED, f"{label}: {weight:.3f}")
    chart.vline("match-weights-zero", 0.0, "#444444", dashed=False)
    return svg([chart])


def _expected_quality_plot(model: dict) -> str:
    """Precision and recall the model expects at each threshold, from its own probabilities (no truth)."""
    expected = model["expected"]
    chart = Chart("What the model expects of its links (no truth needed)",
                  x=Axis("threshold as a match weight, log2(p / (1 − p))"), y=Axis(limits=(0, 1.02)))
    for name, color in (("precision", BLUE), ("recall", RUST), ("f1", GREEN)):
        chart.line(f"expected-{name}", expected["match_weight"], expected[name], color, label=name, steps=True)
    chart.vline("expected-threshold", _weight_of(model["threshold"]), GREY, f"threshold {model['threshold']:.4g}")
    return svg([chart])


def _weight_of(probability: float) -> float:
    """The match weight of a match probability (finite: a probability of 1 is read as 1 − 1e-12)."""
    probability = min(max(probability, 1e-12), 1 - 1e-12)
    return float(np.log2(probability / (1 - probability)))


def _waterfalls_plot(pairs: list[dict], treatments: list[dict], threshold_weight: float) -> str:
    """Pairs' match weights built up, one panel each: the prior's, then each comparison's (``treatments``:
    the model's, a group one)."""
    names = [f"{i}: {t['attribute']}" for i, t in enumerate(treatments)]
    charts = []
    for k, pair in enumerate(pairs):
        steps = [("prior", pair["prior_weight"])] + [(t["attribute"], pair[f"{n} weight"])
                                                      for t, n in zip(treatments, names)]
        total = sum(weight for _, weight in steps)
        chart = Chart(f"{pair['align_id']} → {pair['target_id']}: weight {total:.2f}",
                      x=Axis(categories=[label for label, _ in steps] + ["match weight"], rotate=True),
                      y=Axis("match weight"), height=280)
        running = 0.0
        for i, (label, weight) in enumerate(steps):
            chart.rect(f"waterfall-{k}-step-{i}", i - 0.4, i + 0.4, running, running + weight,
                       GREY if i == 0 else GREEN if weight >= 0 else RED, f"{label}: {weight:+.3f}")
            running += weight
        chart.rect(f"waterfall-{k}-total", len(steps) - 0.4, len(steps) + 0.4, 0.0, total, BLUE, f"{total:.3f}")
        chart.hline(f"waterfall-{k}-threshold", threshold_weight, RUST, f"threshold {threshold_weight:.2f}")
        charts.append(chart)
    return svg(charts)


def _model_section(model: dict, data: dict) -> list[str]:
    """The learned model: how it was fitted, its m/u per level, its match weights, what it expects, and the
    weights of a few pairs near the threshold."""
    if model["m_from"] == "labels":
        fitted = f"m from {model['known_pairs']:,} labelled pairs among the candidates, the prior by EM"
    else:
        fitted = "fitted without labels (m by EM, u from random pairs)"
    parts = [f"<h3>The learned model (Fellegi–Sunter)</h3><p>{fitted}, {model['iterations']} EM iterations; prior "
             f"(the probability that two records drawn at random match) {model['prior']:.4g}, "
             f"{model['expected_matches']:,.0f} matches expected among the candidates; links at match probability ≥ "
             f"{model['threshold']:.4g}"
             f"{' (chosen as the best F1 the model expects)' if model['auto_threshold'] else ''}. Below, a "
             "<em>distance</em> is 1 − the match probability.</p>"]
    notes = []
    for tried in model.get("groups_found", []):
        if not tried["kept"]:
            notes.append(f"{', '.join(html.escape(m) for m in tried['members'])} disagree together among likely "
                         "matches, but weighed as one comparison the model found no more records' counterparts "
                         f"({tried['records']:+,.0f}): weighed apart")
    gained = {tuple(t["members"]): t["records"] for t in model.get("groups_found", []) if t["kept"]}
    for t in model["treatments"]:
        if len(t.get("members", [])) > 1:
            why = (f"found in the data: likely matches disagree on them together, and weighed as one the model "
                   f"finds {gained.get(tuple(t['members']), 0):,.0f} more records' counterparts, one each; "
                   "<code>[model] groups = \"none\"</code> weighs them apart") if model["grouped_by"] == "data" \
                else "grouped by the job"
            notes.append(f"{html.escape(t['attribute'])} is one comparison of "
                         f"{', '.join(html.escape(m) for m in t['members'])} ({why}): its levels are their joint "
                         "levels, each with its own m and u, so that disagreeing together counts once")
        if t["term_frequencies"]:
            notes.append(f"{html.escape(t['attribute'])}: an equal value's u is its frequency among the records "
                         f"({t['distinct_values']:,} distinct values), not the level's average")
        if t["depends_on"]:
            earlier = ", ".join(html.escape(model["treatments"][k]["attribute"]) for k in t["depends_on"])
            notes.append(f"{html.escape(t['attribute'])} depends on {earlier} among random pairs: its u is taken "
                         f"given that one's level (the weights below are its own, before that)")
    if notes:
        parts.append("<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")
    check = model["m_from"] == "EM" and model["known_pairs"] > 0
    rows = [[t["attribute"], level, t["levels"][level], t["m"][level], t["u"][level], t["weights"][level]]
            + ([t["known_m"][level]] if check else [])
            for t in model["treatments"] for level in shown_levels(t)]
    parts.append(_table(["attribute", "level", "distance", "m", "u", "weight log2(m/u)"]
                        + ([f"m among the {model['known_pairs']:,} true candidate pairs"] if check else []),
                        rows, "model"))
    parts.append(f'<div class="plot" id="plot-match-weights">{_match_weights_plot(model)}</div>')
    parts.append(f'<div class="plot" id="plot-expected">{_expected_quality_plot(model)}</div>')
    parts.append('<p class="note">Precision and recall as the model expects them: each candidate counts as '
                 'p matches, p its match probability (before <code>uniq</code>).</p>')
    pairs = [p for p in data["near_threshold"] if "prior_weight" in p][:4]
    if pairs:
        threshold_weight = _weight_of(model["threshold"])
        parts.append("<h4>How a few pairs near the threshold got their weight</h4>")
        parts.append(f'<div class="plot" id="plot-waterfalls">'
                     f'{_waterfalls_plot(pairs, model["treatments"], threshold_weight)}</div>')
    return parts


def _calibration_section(histograms: dict) -> list[str]:
    """A learned model's probabilities against the truth: by match weight, the share of candidates the
    model expects to match and the share that do; and at the threshold, the precision and recall it
    expected of its candidates against those the truth gives."""
    from .pipeline.stats import CALIBRATION_EDGES

    pairs, true, expected = (np.asarray(histograms[f"calibration: {k}"], dtype=np.float64)
                             for k in ("pairs", "true", "expected"))
    linked_pairs, linked_true, linked_expected = histograms["calibration: linked"]
    seen = pairs > 0
    centers = (CALIBRATION_EDGES[:-1] + CALIBRATION_EDGES[1:]) / 2
    chart = Chart("Calibration: the match probability against the truth", x=Axis("match weight, log2(p / (1 − p))"),
                  y=Axis("share of the candidates that match", limits=(0, 1.02)))
    chart.line("calibration-expected", centers[seen], expected[seen] / pairs[seen], BLUE, label="the model's")
    chart.line("calibration-true", centers[seen], true[seen] / pairs[seen], RUST, label="the truth's")
    def weights(k: int) -> str:  # (the first and last bins take everything beyond)
        edges = CALIBRATION_EDGES
        return f"≤ {edges[1]:+g}" if k == 0 else f"> {edges[k]:+g}" if k == len(pairs) - 1 \
            else f"{edges[k]:+g} to {edges[k + 1]:+g}"

    rows = [[weights(int(k)), int(pairs[k]), float(expected[k]), int(true[k])] for k in np.flatnonzero(seen)]
    share = {"precision": (linked_expected / max(linked_pairs, 1), linked_true / max(linked_pairs, 1)),
             "recall": (linked_expected / max(expected.sum(), 1e-300), linked_true / max(true.sum(), 1))}
    return ['<h3>Calibration against the truth</h3>',
            f'<div class="plot" id="plot-calibration">{svg([chart])}</div>',
            f'<p id="calibration-check">At the threshold, of its candidates, the model expected precision '
            f'{share["precision"][0]:.4f} and recall {share["recall"][0]:.4f}; the truth gives precision '
            f'{share["precision"][1]:.4f} and recall {share["recall"][1]:.4f} (before <code>uniq</code>; recall '
            'of the true pairs among the candidates).</p>',
            _table(["match weight", "candidates", "matches expected", "true matches"], rows, "calibration")]


# -- page --------------------------------------------------------------------
def _table(headers: list[str], rows: list[list[Any]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _member_of(slot: int, members: list[dict]) -> str:
    for m in members:
        if m["first_slot"] <= slot < m["first_slot"] + m["slots"]:
            return f"{m['blocking']} (slot {slot - m['first_slot']})"
    return str(slot)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.plot{margin:1em 0}.plot svg{max-width:100%;height:auto}
.note{color:#555;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
"""


def _index_read(index: dict | None) -> list[str]:
    """A batch linked against an index: which version it read, and how much of it."""
    if index is None:
        return []
    added = f"; the batch was then added as version {index['added_as_version']}" if "added_as_version" in index \
        else ""
    return [f'<p id="index-read">Linked against the index at {html.escape(str(index["path"]))}, version '
            f'{index["version"]}: the batch\'s keys touched {index["block_rows_read"]:,} of its block rows; it read '
            f'{index["bytes_read"] / 2**20:,.1f} MiB of the index\'s {index["bytes"] / 2**20:,.1f} MiB{added}.</p>']


def _near_threshold_section(data: dict) -> list[str]:
    """The sampled candidates nearest the threshold: distances, weights, values."""
    parts = ["<h3>Candidates nearest the threshold</h3>"]
    keys = [k for k in data["near_threshold"][0] if k not in ("align_id", "target_id", "distance")]
    weights = {f"{i}: {t['attribute']}": t["weight"] for i, t in enumerate(data["treatments"])}
    headers = ["align id", "target id", "distance", "linked"] + [
        k.replace(" distance", f" distance (weight {weights.get(k[:-len(' distance')], '')})")
        if k.endswith(" distance") else k for k in keys]
    rows = [[r["align_id"], r["target_id"], r["distance"], _linked(r["distance"], data["threshold"])]
            + [r[k] for k in keys] for r in data["near_threshold"]]
    parts.append(_table(headers, rows, "near-threshold"))
    parts.append('<p class="note">Per-attribute distances are weighted; their sum is the global distance. '
                 'Values are shown normalized, align | target (and as read, with their language tags, '
                 'when a set keeps them); ∅ is a missing value.</p>')
    return parts


def write_report(run_dir: str) -> str:
    """Build ``report.html`` in ``run_dir`` from its ``summary.json`` and
    ``report-data.json``; return its path."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(run_dir, "report-data.json")) as f:
        data = json.load(f)
    b = summary["blocking"]
    parts = [f"<h1>bigalign run report</h1><p>Job <code>{html.escape(summary['job'])}</code>: "
             f"{summary['links']:,} links written to <code>{html.escape(summary['files']['links'])}</code>.</p>"]
    quality = summary.get("quality")
    if quality:
        parts.append(_table(["precision", "recall", "F1", "links", "true pairs", "true positives"],
                            [[quality["precision"], quality["recall"], quality["f1"], quality["links"],
                              quality["true_pairs"], quality["true_positives"]]], "quality"))
    parts.append("<h2>Job and versions</h2>")
    parts.append(_table(["attribute", "metric", "weight", "normalized"],
                        [[t["attribute"], t["metric"], t["weight"], t["normalized"]] for t in data["treatments"]],
                        "treatments"))
    model = summary.get("model")
    shown = f"match probability ≥ {model['threshold']:.4g}" if model else data["threshold"]
    parts.append(f"<p>threshold {shown}, uniq {data['uniq']}; blocking: "
                 + "; ".join(html.escape(m["blocking"]) for m in data["blocking"]) + "</p>")
    if model:
        parts += _model_section(model, data)
    parts.append(f"<details><summary>The job file as read</summary><pre>"
                 f"{html.escape(json.dumps(data['job'], indent=1, default=str))}</pre></details>")
    parts.append(_table(list(data["versions"]), [list(data["versions"].values())], "versions"))
    parts.append("<h2>Time and memory</h2>")
    parts.append(f'<div class="plot" id="plot-stages">{_stages_plot(summary)}</div>')
    if "dask_report" in summary["files"]:
        report_link = os.path.relpath(summary["files"]["dask_report"], run_dir)
        parts.append(f'<p>Dask\'s own account of the run: <a href="{html.escape(report_link)}">performance report</a>.'
                     '</p>')
    parts.append("<h2>Blocking</h2>")
    parts += _index_read(b.get("index"))
    records = summary["records"]
    parts.append(_table(["set", "rows read", "kept", "records", "rejected"],
                        [[k, v["read"], v["kept"], v.get("records", v["kept"]), v["rejected"]]
                         for k, v in records.items()], "records"))
    parts.append(_table(["blocks", "block pairs", "candidate pairs", "share of the cross product",
                         "largest block (pairs)", "largest block's share of block pairs", "excluded blocks"]
                        + (["pair completeness"] if "pair_completeness" in b else []),
                        [[b["blocks"], b["block_pairs"], b["candidate_pairs"], b["candidate_share_of_cross_product"],
                          b["largest_block_pairs"], b["largest_block_share"], b["excluded_blocks"]]
                         + ([b["pair_completeness"]] if "pair_completeness" in b else [])], "blocking-figures"))
    parts.append(f'<div class="plot" id="plot-volumes">{_volumes_plot(summary)}</div>')
    parts.append(f'<div class="plot" id="plot-block-sizes">{_block_sizes_plot(data)}</div>')
    parts.append("<h3>Largest blocks</h3>")
    parts.append(_table(["pairs", "align rows", "target rows", "blocking", "an align record", "a target record"],
                        [[p, na, nb, _member_of(slot, data["blocking"]), a, t]
                         for p, na, nb, slot, a, t in data["largest_blocks"]], "largest-blocks"))
    for i, member in enumerate(m for m in data["blocking"] if m.get("kind") == "minhash_lsh"):
        parts.append(f'<div class="plot" id="plot-s-curve-{i}">{_s_curve_plot(member)}</div>')
    if summary.get("clusters"):
        parts += _clusters_section(summary["clusters"], summary["files"]["clusters"])
    parts.append("<h2>Scores</h2>")
    parts.append(f'<div class="plot" id="plot-distances">{_distances_plot(data)}</div>')
    if "true" in data["distance_histograms"] and quality:
        curves = threshold_curves(data, quality["true_pairs"])
        parts.append(f'<div class="plot" id="plot-quality">{_quality_plot(curves, data["threshold"])}</div>')
        parts.append('<p class="note">Every candidate pair under a threshold counts as a link here (before '
                     '<code>uniq</code>); the table at the top is the run\'s own, after it.</p>')
    if "calibration: pairs" in data["distance_histograms"]:
        parts += _calibration_section(data["distance_histograms"])
    if data["near_threshold"]:
        parts += _near_threshold_section(data)
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bigalign report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")
    path = os.path.join(run_dir, "report.html")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    return path
