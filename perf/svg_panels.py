"""SVG line charts on log-log axes, side by side, without a plotting library (perf/plot_*.py)."""
import math

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def size_label(s):
    return f"{s >> 20}M" if s >= 1 << 20 else f"{s >> 10}K" if s >= 1024 else str(s)


def panels(charts, yticks, solid=(1,), width=460, height=300, margin=50):
    """charts: [(title, [(label, color, [(size, y)], [(size, y, filled)] or None)])], x = size (log2),
    y on a log10 scale spanning yticks; horizontal lines at every tick, solid at those in `solid`.
    Markers, where given, are circles: filled or open. Returns the SVG text."""
    W, H, M = width, height, margin
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W * len(charts)}" height="{H + 40}" '
           'font-family="sans-serif" font-size="11">']
    ymin, ymax = math.log10(min(yticks)), math.log10(max(yticks))
    sizes = [s for _, series in charts for _, _, pts, _ in series for s, _ in pts]
    xmin, xmax = math.log2(min(sizes)), math.log2(max(sizes))
    for i, (title, series) in enumerate(charts):
        ox = i * W

        def X(s):
            return ox + M + (math.log2(s) - xmin) / max(xmax - xmin, 1) * (W - 2 * M)

        def Y(r):
            r = min(max(r, 10 ** ymin), 10 ** ymax)
            return H - M + 20 - (math.log10(r) - ymin) / (ymax - ymin) * (H - 2 * M)

        out.append(f'<text x="{ox + W / 2}" y="16" text-anchor="middle">{title}</text>')
        out.append(f'<rect x="{ox + M}" y="{Y(10 ** ymax)}" width="{W - 2 * M}" '
                   f'height="{Y(10 ** ymin) - Y(10 ** ymax)}" fill="none" stroke="#888"/>')
        for r in yticks:
            dash = '' if r in solid else ' stroke-dasharray="2,3"'
            out.append(f'<line x1="{ox + M}" x2="{ox + W - M}" y1="{Y(r)}" y2="{Y(r)}" '
                       f'stroke="#bbb"{dash}/>')
            out.append(f'<text x="{ox + M - 4}" y="{Y(r) + 4}" text-anchor="end">{r:g}</text>')
        for e in range(int(xmin), int(xmax) + 1, 3):
            out.append(f'<text x="{X(2 ** e)}" y="{Y(10 ** ymin) + 14}" '
                       f'text-anchor="middle">{size_label(2 ** e)}</text>')
        for j, (label, color, pts, marks) in enumerate(series):
            pts = sorted(pts)
            if not pts:
                continue
            path = " ".join(f"{X(s):.1f},{Y(r):.1f}" for s, r in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
            for s, r, filled in marks or []:
                fill = color if filled else "white"
                out.append(f'<circle cx="{X(s):.1f}" cy="{Y(r):.1f}" r="3.5" fill="{fill}" '
                           f'stroke="{color}"/>')
            out.append(f'<text x="{ox + M + 6}" y="{Y(10 ** ymax) + 14 + 13 * j}" '
                       f'fill="{color}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)
