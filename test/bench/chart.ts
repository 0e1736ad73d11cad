// A grouped bar chart as a standalone SVG (no dependencies): one group per label, one bar per series, each bar
// its median with a min–max whisker. Used by the benchmark's report.

export interface BarValue {
    readonly median: number;
    readonly min: number;
    readonly max: number;
}

export interface BarChart {
    readonly title: string;
    readonly groups: readonly string[];
    readonly series: readonly { readonly name: string; readonly values: readonly (BarValue | undefined)[] }[];
}

const COLOURS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"];
const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function renderBarChart(chart: BarChart): string {
    const bar = 18;
    const gap = 22;
    const groupWidth = chart.series.length * bar + gap;
    const left = 50;
    const top = 40;
    const height = 260;
    const width = left + chart.groups.length * groupWidth + 20;
    const legendTop = top + height + 50;
    const all = chart.series.flatMap((s) => s.values.filter((v): v is BarValue => v !== undefined).map((v) => v.max));
    const step = niceStep(Math.max(1, ...all) / 5);
    const top_ = Math.ceil(Math.max(1, ...all) / step) * step;
    const y = (v: number) => top + height - (v / top_) * height;
    const parts: string[] = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${legendTop + chart.series.length * 18 + 10}" font-family="sans-serif" font-size="11">`,
        `<rect width="100%" height="100%" fill="white"/>`,
        `<text x="${left}" y="20" font-size="13" font-weight="bold">${escape(chart.title)}</text>`,
    ];
    for (let v = 0; v <= top_ + 1e-9; v += step) {
        parts.push(`<line x1="${left}" x2="${width - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`, `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toFixed(1)}</text>`);
    }
    chart.groups.forEach((group, g) => {
        const x0 = left + g * groupWidth + gap / 2;
        chart.series.forEach((s, i) => {
            const v = s.values[g];
            if (!v) return;
            const x = x0 + i * bar;
            const colour = COLOURS[i % COLOURS.length];
            parts.push(
                `<rect x="${x}" y="${y(v.median)}" width="${bar - 3}" height="${y(0) - y(v.median)}" fill="${colour}"><title>${escape(`${group}, ${s.name}: ${v.median.toFixed(1)} s (${v.min.toFixed(1)}–${v.max.toFixed(1)})`)}</title></rect>`,
                `<line x1="${x + (bar - 3) / 2}" x2="${x + (bar - 3) / 2}" y1="${y(v.min)}" y2="${y(v.max)}" stroke="black"/>`,
            );
        });
        parts.push(`<text x="${x0 + (chart.series.length * bar) / 2}" y="${top + height + 16}" text-anchor="middle">${escape(group)}</text>`);
    });
    parts.push(`<line x1="${left}" x2="${width - 20}" y1="${y(0)}" y2="${y(0)}" stroke="black"/>`);
    chart.series.forEach((s, i) => {
        parts.push(`<rect x="${left}" y="${legendTop + i * 18 - 10}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/>`, `<text x="${left + 18}" y="${legendTop + i * 18}">${escape(s.name)}</text>`);
    });
    parts.push("</svg>", "");
    return parts.join("\n");
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
    const power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
}
