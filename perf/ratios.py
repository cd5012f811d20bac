#!/usr/bin/env python3
"""Ratios of weft to Open MPI from interleaved repeated runs (see compare_mpi.sh).

usage: ratios.py --parse-weft --label LABEL run1.txt run2.txt ...   weft perf tables -> CSV on stdout
       ratios.py weft.csv mpi.csv ...                               -> markdown tables on stdout

The CSV columns are those of the shared parse_tables.py (label,rep,op,size,count,iters,time_us,max_t_us,
algbw,busbw,wrong). weft's tables have 14 columns (size count type redop root, then time algbw busbw #wrong
out of place and in place, then the algorithm the tuner chose; tables from before that column have 13), which
parse_tables.py does not read, so --parse-weft does it here: one CSV row per size from the out-of-place columns
(the repetition is the file's position on the command line; a file may hold several tables, one per launch).

Labels name the implementation and the rank count: weft-np2, mpi-vader-np2, mpi-vader_nofree-np4, ...
busbw is recomputed from the time (size / time * factor) so that small sizes keep their precision; the ratio
is weft busbw / MPI busbw (= MPI time / weft time), with its min-max over the repetitions paired by number
(the same interleaved round)."""
import argparse
import collections
import csv
import math
import re
import statistics
import sys

COLS = "label,rep,op,size,count,iters,time_us,max_t_us,algbw,busbw,wrong".split(",")


def norm_op(op):
    return op.replace("_", "").lower()


def parse_weft(files, label):
    w = csv.writer(sys.stdout)
    for rep, fn in enumerate(files, 1):
        op, iters = None, ""
        try:
            lines = open(fn, errors="replace").readlines()
        except OSError as e:
            print(f"ratios.py: {e}", file=sys.stderr)
            continue
        for line in lines:
            m = re.match(r"# weft \S+ (\w+)_perf:", line)
            if m:
                op = m.group(1)
                mi = re.search(r"warmup iters: \d+ iters: (\d+)", line)
                iters = mi.group(1) if mi else ""
                continue
            t = line.split()
            if line.startswith("#") or len(t) not in (13, 14) or op is None:
                continue
            try:
                size, count = int(t[0]), int(t[1])
                time_us, algbw, busbw = float(t[5]), float(t[6]), float(t[7])
            except ValueError:
                continue
            wrong = t[8] if t[8].lstrip("-").isdigit() else "-1"
            w.writerow([label, rep, op, size, count, iters, time_us, "", algbw, busbw, wrong])


def bus_factor(op, n):
    op = norm_op(op)
    if op == "allreduce":
        return 2.0 * (n - 1) / n
    if op in ("allgather", "reducescatter", "alltoall"):
        return (n - 1) / n
    return 1.0


def split_label(label):
    m = re.match(r"(.+)-np(\d+)$", label)
    if not m:
        return label, 0
    return m.group(1), int(m.group(2))


def fmt_bw(x):
    if x is None:
        return "—"
    return f"{x:.3g}" if x < 100 else f"{x:.1f}"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


def report(csv_files):
    # data[(op, n)][impl][size] = {rep: (busbw, wrong)}
    data = collections.OrderedDict()
    for fn in csv_files:
        for r in csv.DictReader(open(fn)):
            impl, n = split_label(r["label"])
            op = norm_op(r["op"])
            t = float(r["time_us"])
            size = int(r["size"])
            bw = size / t / 1e3 * bus_factor(op, n) if t > 0 else 0.0
            d = data.setdefault((op, n), collections.OrderedDict()).setdefault(impl, {})
            d.setdefault(size, {})[int(r["rep"])] = (bw, int(r["wrong"]))
    if not data:
        print("ratios.py: no rows", file=sys.stderr)
        return 1
    for (op, n), impls in data.items():
        mpis = [i for i in impls if i != "weft"]
        weft = impls.get("weft", {})
        sizes = sorted({s for d in impls.values() for s in d})
        nrep = max(len(v) for d in impls.values() for v in d.values())
        print(f"\n### {op}, {n} ranks\n")
        kind = "float32 sum" if op in ("allreduce", "reducescatter", "reduce") else "float32"
        print(f"{kind}, out of place; busbw in GB/s: median of {nrep} interleaved runs (min–max); "
              f"weft/MPI = ratio of the medians (min–max over the runs paired by round).\n")
        head = ["size (B)", "weft busbw"]
        for m in mpis:
            name = m.replace("mpi-", "MPI ")
            head += [f"{name} busbw", f"weft / {name}"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---:|" * len(head))
        geo = {m: [] for m in mpis}
        for s in sizes:
            cells = [str(s)]
            w = weft.get(s, {})
            wmed = cell_bw(w, cells)
            for m in mpis:
                md = impls[m].get(s, {})
                mmed = cell_bw(md, cells)
                if wmed and mmed:
                    ratio = wmed / mmed
                    paired = [w[r][0] / md[r][0] for r in w if r in md and md[r][0] > 0]
                    geo[m].append((s, ratio))
                    sp = f" ({min(paired):.2f}–{max(paired):.2f})" if len(paired) > 1 else ""
                    cells.append(f"{fmt_ratio(ratio)}{sp}")
                else:
                    cells.append("—")
            print("| " + " | ".join(cells) + " |")
        for m in mpis:
            if geo[m]:
                name = m.replace("mpi-", "MPI ")
                small = [x for s, x in geo[m] if s < (1 << 20)]
                big = [x for s, x in geo[m] if s >= (1 << 20)]
                parts = [f"all sizes {geomean([x for _, x in geo[m]]):.2f}"]
                if small and big:
                    parts += [f"< 1 MiB {geomean(small):.2f}", f"≥ 1 MiB {geomean(big):.2f}"]
                print(f"\nweft / {name}, geometric mean: " + ", ".join(parts))
        if not mpis:
            print("\n(no MPI counterpart: mpi_coll_bench has no such collective)")
    return 0


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def cell_bw(reps, cells):
    """Appends 'median (min–max)' of busbw over repetitions to cells; returns the median or None."""
    if not reps:
        cells.append("—")
        return None
    bws = [bw for bw, _ in reps.values()]
    wrong = [wr for _, wr in reps.values() if wr >= 0]
    med = statistics.median(bws)
    txt = fmt_bw(med)
    if len(bws) > 1:
        txt += f" ({fmt_bw(min(bws))}–{fmt_bw(max(bws))})"
    if wrong and max(wrong) > 0:
        txt += f" **{max(wrong)} wrong**"
    elif not wrong:
        txt += " (unchecked)"
    cells.append(txt)
    return med if med > 0 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parse-weft", action="store_true", help="turn weft perf tables into CSV rows")
    ap.add_argument("--label", default="weft", help="with --parse-weft: the label column")
    ap.add_argument("--header", action="store_true", help="with --parse-weft: print the CSV header")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.parse_weft:
        if a.header:
            csv.writer(sys.stdout).writerow(COLS)
        parse_weft(a.files, a.label)
        return 0
    return report(a.files)


if __name__ == "__main__":
    sys.exit(main())
