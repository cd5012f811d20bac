#!/usr/bin/env python3
"""Plots busbw ratios weft / Open MPI from compare_mpi.sh's CSVs as an SVG (no plotting library needed).

usage: perf/plot_ratios.py OUTDIR_OF_COMPARE_MPI [mpi-label, default mpi-vader] > plot.svg
One panel per rank count; x = size (log scale), y = ratio of median busbw (log scale), one line per
collective, with reference lines at 1.0 and 1.5.
"""
import csv
import math
import statistics
import sys
from collections import defaultdict

out_dir = sys.argv[1]
mpi_label = sys.argv[2] if len(sys.argv) > 2 else "mpi-vader"


def medians(path, prefix):
    vals = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            label = row["label"]
            if not label.startswith(prefix):
                continue
            np_ = int(label.split("-np")[-1])
            op = row["op"].replace("_", "").replace("reducescatter", "reduce_scatter")
            vals[(np_, op, int(row["size"]))].append(float(row["busbw"]))
    return {k: statistics.median(v) for k, v in vals.items()}


weft = medians(f"{out_dir}/weft.csv", "weft-np")
mpi = medians(f"{out_dir}/mpi.csv", mpi_label + "-np")
series = defaultdict(list)  # (np, op) -> [(size, ratio)]
for key, w in weft.items():
    m = mpi.get(key)
    if m and m > 0 and w > 0:
        series[(key[0], key[1])].append((key[2], w / m))
nps = sorted({k[0] for k in series})
colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
ops = sorted({k[1] for k in series})
W, H, M = 460, 300, 50
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * len(nps)}" height="{H + 40}" '
       'font-family="sans-serif" font-size="11">']
ymin, ymax = math.log10(0.25), math.log10(32)
sizes = [s for pts in series.values() for s, _ in pts]
xmin, xmax = math.log2(min(sizes)), math.log2(max(sizes))
for i, np_ in enumerate(nps):
    ox = i * W
    def X(s):
        return ox + M + (math.log2(s) - xmin) / (xmax - xmin) * (W - 2 * M)
    def Y(r):
        r = min(max(r, 10 ** ymin), 10 ** ymax)
        return H - M + 20 - (math.log10(r) - ymin) / (ymax - ymin) * (H - 2 * M)
    svg.append(f'<text x="{ox + W / 2}" y="16" text-anchor="middle">{np_} ranks: busbw weft / '
               f'Open MPI ({mpi_label})</text>')
    svg.append(f'<rect x="{ox + M}" y="{Y(10 ** ymax)}" width="{W - 2 * M}" '
               f'height="{Y(10 ** ymin) - Y(10 ** ymax)}" fill="none" stroke="#888"/>')
    for r in (0.25, 0.5, 1, 1.5, 2, 4, 8, 16, 32):
        dash = '' if r in (1, 1.5) else ' stroke-dasharray="2,3"'
        svg.append(f'<line x1="{ox + M}" x2="{ox + W - M}" y1="{Y(r)}" y2="{Y(r)}" stroke="#bbb"{dash}/>')
        svg.append(f'<text x="{ox + M - 4}" y="{Y(r) + 4}" text-anchor="end">{r:g}</text>')
    for e in range(int(xmin), int(xmax) + 1, 3):
        s = 2 ** e
        lab = f"{s >> 20}M" if s >= 1 << 20 else f"{s >> 10}K" if s >= 1024 else str(s)
        svg.append(f'<text x="{X(s)}" y="{Y(10 ** ymin) + 14}" text-anchor="middle">{lab}</text>')
    for j, op in enumerate(ops):
        pts = sorted(series.get((np_, op), []))
        if not pts:
            continue
        c = colors[j % len(colors)]
        path = " ".join(f"{X(s):.1f},{Y(r):.1f}" for s, r in pts)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.8"/>')
        svg.append(f'<text x="{ox + M + 6}" y="{Y(10 ** ymax) + 14 + 13 * j}" fill="{c}">{op}</text>')
svg.append("</svg>")
print("\n".join(svg))
