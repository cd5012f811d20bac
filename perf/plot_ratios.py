#!/usr/bin/env python3
"""Plots busbw ratios weft / Open MPI from compare_mpi.sh's CSVs as an SVG (no plotting library needed).

usage: perf/plot_ratios.py OUTDIR_OF_COMPARE_MPI [mpi-label, default mpi-vader] > plot.svg
One panel per rank count; x = size (log scale), y = ratio of median busbw (log scale), one line per
collective, with reference lines at 1.0 and 1.5.
"""
import csv
import statistics
import sys
from collections import defaultdict

from svg_panels import COLORS, panels

out_dir = sys.argv[1]
mpi_label = sys.argv[2] if len(sys.argv) > 2 else "mpi-vader"


def medians(path, prefix):
    """Median time per iteration (us) per (ranks, collective, size)."""
    vals = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            label = row["label"]
            if not label.startswith(prefix):
                continue
            np_ = int(label.split("-np")[-1])
            op = row["op"].replace("_", "").replace("reducescatter", "reduce_scatter")
            vals[(np_, op, int(row["size"]))].append(float(row["time_us"]))
    return {k: statistics.median(v) for k, v in vals.items()}


weft = medians(f"{out_dir}/weft.csv", "weft-np")
mpi = medians(f"{out_dir}/mpi.csv", mpi_label + "-np")
series = defaultdict(list)  # (np, op) -> [(size, ratio)]
# The ratio of bus bandwidths is that of the times (the sizes and bus factors are the same): times,
# unlike the busbw columns (2 decimals in weft's tables), keep their precision at small sizes, as in
# ratios.py.
for key, w in weft.items():
    m = mpi.get(key)
    if m and m > 0 and w > 0:
        series[(key[0], key[1])].append((key[2], m / w))
nps = sorted({k[0] for k in series})
ops = sorted({k[1] for k in series})
charts = [(f"{np_} ranks: busbw weft / Open MPI ({mpi_label})",
           [(op, COLORS[j % len(COLORS)], series.get((np_, op), []), None) for j, op in enumerate(ops)])
          for np_ in nps]
print(panels(charts, (0.25, 0.5, 1, 1.5, 2, 4, 8, 16, 32), solid=(1, 1.5)))
