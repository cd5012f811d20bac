#!/usr/bin/env python3
"""Plots hier_bench.sh's results as an SVG: flat time / hierarchical time per size (above 1: hier is faster),
one panel per collective, one line per layout; each point's marker shows the tuner's choice with weft-tune's
constants (filled: hier, open: a flat algorithm).

usage: perf/plot_hier.py PREFIX-raw.csv > plot.svg
"""
import csv
import statistics
import sys
from collections import defaultdict

from svg_panels import COLORS, panels

times = defaultdict(list)  # (layout, coll, variant, size) -> [us]
choice = defaultdict(set)  # (layout, coll, size) -> tuned's algorithms
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f):
        key = (row["layout"], row["coll"], int(row["size"]))
        times[(row["layout"], row["coll"], row["variant"], int(row["size"]))].append(float(row["time_us"]))
        if row["variant"] == "tuned":
            choice[key].add(row["algo"])
layouts = sorted({k[0] for k in times})
charts = []
for coll in ("allreduce", "alltoall"):
    series = []
    for j, lay in enumerate(layouts):
        pts, marks = [], []
        for (l, c, v, s), flat in times.items():
            hier = times.get((l, c, "hier", s))
            if l != lay or c != coll or v != "flat" or not hier:
                continue
            r = statistics.median(flat) / statistics.median(hier)
            pts.append((s, r))
            marks.append((s, r, choice.get((l, c, s)) == {"hier"}))
        series.append((f"{lay} (filled: tuner picks hier)", COLORS[j % len(COLORS)], pts, marks))
    flat = "ring" if coll == "allreduce" else "pairwise"
    charts.append((f"{coll}: time {flat} / time hier, per size", series))
print(panels(charts, (0.25, 0.5, 1, 1.3, 2, 4, 8), solid=(1,)))
