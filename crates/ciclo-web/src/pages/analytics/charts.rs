//! The SVG charts of the analytics pages, in the style of [`crate::charts`]: a 5 × 5 heat-map
//! (the RFM grid, every cell a link), lines of percentages over months with a legend (churn
//! and repeat rates), and a funnel (customers who reached each stage of the cycle, with the
//! conversion between consecutive stages).
//!
//! As there: no JavaScript, a `viewBox` so the chart scales, `<title>`/`<desc>` for screen
//! readers, a `<title>` on every mark, colours as presentation attributes (the console's
//! Content-Security-Policy forbids inline `style`), text formatted by the caller and escaped here.

use crate::charts::escape;
use std::fmt::Write;

fn open_svg(out: &mut String, id: &str, width: f64, height: f64, title: &str, desc: &str) {
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(out, r#"<title id="{id}-title">{}</title>"#, escape(title));
    let _ = write!(out, r#"<desc id="{id}-desc">{}</desc>"#, escape(desc));
}

/// One cell of a heat-map.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatCell {
    /// Column, 0-based from the left.
    pub column: usize,
    /// Row, 0-based from the top.
    pub row: usize,
    pub value: i64,
    /// The value as the reader sees it (in the cell).
    pub display: String,
    /// Cells with the same group are outlined together and the group is named once.
    pub group: String,
    /// The group's name as shown, written in the group's first cell (reading order).
    pub group_label: String,
    /// What hovering says about the cell.
    pub tooltip: String,
    /// Where a click on the cell goes (a local path).
    pub href: String,
}

/// Axis texts of a heat-map.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatAxes {
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    pub column_title: String,
    pub row_title: String,
}

/// Blends from a pale to a deep blue: `intensity` 0–1.
fn heat_colour(intensity: f64) -> String {
    let (from, to) = ([238.0, 242.0, 255.0], [30.0, 58.0, 138.0]);
    let t = intensity.clamp(0.0, 1.0);
    let channel = |i: usize| (from[i] + (to[i] - from[i]) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", channel(0), channel(1), channel(2))
}

/// Splits a label into at most two lines of about `width` characters.
fn two_lines(label: &str, width: usize) -> Vec<String> {
    if label.chars().count() <= width {
        return vec![label.to_string()];
    }
    let words: Vec<&str> = label.split_whitespace().collect();
    let mut best = (usize::MAX, 1);
    for split in 1..words.len() {
        let first = words[..split].join(" ").chars().count();
        let second = words[split..].join(" ").chars().count();
        let longest = first.max(second);
        if longest < best.0 {
            best = (longest, split);
        }
    }
    if words.len() < 2 {
        return vec![label.to_string()];
    }
    vec![words[..best.1].join(" "), words[best.1..].join(" ")]
}

/// A grid of linked cells shaded by value (the RFM grid), with group outlines and names.
pub fn heatmap(id: &str, title: &str, cells: &[HeatCell], axes: &HeatAxes) -> String {
    const CELL_W: f64 = 104.0;
    const CELL_H: f64 = 66.0;
    const LEFT: f64 = 80.0;
    const TOP: f64 = 8.0;
    const BOTTOM: f64 = 48.0;
    let columns = axes.columns.len().max(1);
    let rows = axes.rows.len().max(1);
    let width = LEFT + CELL_W * columns as f64 + 8.0;
    let height = TOP + CELL_H * rows as f64 + BOTTOM;
    let max = cells.iter().map(|c| c.value).max().unwrap_or(0).max(1) as f64;
    let desc = cells
        .iter()
        .map(|c| c.tooltip.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = String::new();
    open_svg(&mut out, id, width, height, title, &desc);
    let x_of = |column: usize| LEFT + CELL_W * column as f64;
    let y_of = |row: usize| TOP + CELL_H * row as f64;
    let mut named: Vec<&str> = Vec::new();
    for cell in cells {
        let intensity = if cell.value > 0 {
            0.08 + 0.92 * cell.value as f64 / max
        } else {
            0.0
        };
        let dark = intensity > 0.55;
        let (ink, soft) = if dark {
            ("#ffffff", "#e0e7ff")
        } else {
            ("#0f172a", "#334155")
        };
        let (x, y) = (x_of(cell.column), y_of(cell.row));
        let _ = write!(
            out,
            r##"<a class="heat-cell" href="{href}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="4" fill="{fill}" stroke="#ffffff" stroke-width="2"><title>{tooltip}</title></rect><text class="heat-value" x="{cx:.1}" y="{vy:.1}" text-anchor="middle" fill="{ink}">{display}</text>"##,
            href = escape(&cell.href),
            w = CELL_W,
            h = CELL_H,
            fill = heat_colour(intensity),
            tooltip = escape(&cell.tooltip),
            cx = x + CELL_W / 2.0,
            vy = y + CELL_H - 14.0,
            display = escape(&cell.display),
        );
        if !named.contains(&cell.group.as_str()) {
            named.push(&cell.group);
            for (i, line) in two_lines(&cell.group_label, 13).iter().enumerate() {
                let _ = write!(
                    out,
                    r##"<text class="heat-group" x="{lx:.1}" y="{ly:.1}" fill="{soft}">{line}</text>"##,
                    lx = x + 6.0,
                    ly = y + 15.0 + 12.0 * i as f64,
                    line = escape(line),
                );
            }
        }
        out.push_str("</a>");
    }
    // Outline the groups: a dark edge wherever two neighbouring cells belong to different ones.
    let group_at = |column: usize, row: usize| {
        cells
            .iter()
            .find(|c| c.column == column && c.row == row)
            .map(|c| c.group.as_str())
    };
    for cell in cells {
        let (x, y) = (x_of(cell.column), y_of(cell.row));
        let right = group_at(cell.column + 1, cell.row);
        if right.is_some_and(|g| g != cell.group) {
            let _ = write!(
                out,
                r##"<line class="heat-edge" x1="{x1:.1}" x2="{x1:.1}" y1="{y:.1}" y2="{y2:.1}" stroke="#0f172a" stroke-width="2.5"/>"##,
                x1 = x + CELL_W,
                y2 = y + CELL_H,
            );
        }
        let below = group_at(cell.column, cell.row + 1);
        if below.is_some_and(|g| g != cell.group) {
            let _ = write!(
                out,
                r##"<line class="heat-edge" x1="{x:.1}" x2="{x2:.1}" y1="{y1:.1}" y2="{y1:.1}" stroke="#0f172a" stroke-width="2.5"/>"##,
                x2 = x + CELL_W,
                y1 = y + CELL_H,
            );
        }
    }
    for (row, label) in axes.rows.iter().enumerate() {
        let _ = write!(
            out,
            r##"<text class="chart-axis" x="{x:.1}" y="{y:.1}" text-anchor="end" fill="#475569">{label}</text>"##,
            x = LEFT - 10.0,
            y = y_of(row) + CELL_H / 2.0 + 4.0,
            label = escape(label),
        );
    }
    for (column, label) in axes.columns.iter().enumerate() {
        let _ = write!(
            out,
            r##"<text class="chart-axis" x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="#475569">{label}</text>"##,
            x = x_of(column) + CELL_W / 2.0,
            y = TOP + CELL_H * rows as f64 + 16.0,
            label = escape(label),
        );
    }
    let _ = write!(
        out,
        r##"<text class="chart-label" x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="#0f172a">{title}</text>"##,
        x = LEFT + CELL_W * columns as f64 / 2.0,
        y = height - 6.0,
        title = escape(&axes.column_title),
    );
    let _ = write!(
        out,
        r##"<text class="chart-label" x="16" y="{y:.1}" text-anchor="middle" fill="#0f172a" transform="rotate(-90 16 {y:.1})">{title}</text>"##,
        y = TOP + CELL_H * rows as f64 / 2.0,
        title = escape(&axes.row_title),
    );
    out.push_str("</svg>");
    out
}

/// One line of a [`percent_lines`] chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// Stroke colour (also a CSS class `chart-series-{index}` for themes).
    pub colour: &'static str,
    /// Dashed, to tell lines apart without colour.
    pub dashed: bool,
    /// Shares 0–1 per slot; `None` where there is nothing to measure (the line breaks).
    pub values: Vec<Option<f64>>,
    /// The values as the reader sees them.
    pub displays: Vec<String>,
}

/// Lines of percentages over labelled slots (months), a y axis from 0 % to a round top, and a
/// legend above the plot.
pub fn percent_lines(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    percent_label: &dyn Fn(f64) -> String,
) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 270.0;
    const LEFT: f64 = 56.0;
    const RIGHT: f64 = 28.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 28.0;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |m, v| m.max(*v));
    // The top of the axis: the next 20 % step above the data (at least 20 %, at most 100 %).
    let top = ((max * 5.0).ceil() / 5.0).clamp(0.2, 1.0);
    let ticks = (top * 10.0).round() as usize / 2;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slots = labels.len().max(1);
    let slot_w = (WIDTH - LEFT - RIGHT) / slots as f64;
    let x_of = |i: usize| LEFT + slot_w * (i as f64 + 0.5);
    let y_of = |v: f64| TOP + plot_h * (1.0 - v.clamp(0.0, top) / top);
    let desc = series
        .iter()
        .map(|s| {
            let points = labels
                .iter()
                .zip(&s.displays)
                .map(|(l, d)| format!("{l} {d}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{}: {points}", s.name)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = String::new();
    open_svg(&mut out, id, WIDTH, HEIGHT, title, &desc);
    for tick in 0..=ticks {
        let value = top * tick as f64 / ticks.max(1) as f64;
        let y = y_of(value);
        let _ = write!(
            out,
            r##"<line class="chart-grid" x1="{LEFT:.1}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text class="chart-axis" x="{tx:.1}" y="{ty:.1}" text-anchor="end" fill="#475569">{label}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            label = escape(&percent_label(value)),
        );
    }
    let every = labels.len().div_ceil(6).max(1);
    for (i, label) in labels.iter().enumerate() {
        if !(labels.len() - 1 - i).is_multiple_of(every) {
            continue;
        }
        let _ = write!(
            out,
            r##"<text class="chart-axis" x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="#475569">{label}</text>"##,
            x = x_of(i),
            y = HEIGHT - 8.0,
            label = escape(label),
        );
    }
    let mut legend_x = LEFT;
    for (index, s) in series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<g class="chart-legend"><line x1="{x1:.1}" x2="{x2:.1}" y1="14" y2="14" stroke="{colour}" stroke-width="3"{dash}/><text x="{tx:.1}" y="18" fill="#0f172a">{name}</text></g>"##,
            x1 = legend_x,
            x2 = legend_x + 24.0,
            colour = s.colour,
            tx = legend_x + 30.0,
            name = escape(&s.name),
        );
        legend_x += 48.0 + 7.0 * s.name.chars().count() as f64;
        // Runs of consecutive values: a line breaks where a value is missing.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, value) in s.values.iter().enumerate() {
            match value {
                Some(v) => {
                    if let Some(run) = runs.last_mut() {
                        run.push((x_of(i), y_of(*v)));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| r.len() > 1) {
            let points = run
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = write!(
                out,
                r##"<polyline class="chart-series chart-series-{index}" points="{points}" fill="none" stroke="{colour}" stroke-width="2.5" stroke-linejoin="round"{dash}/>"##,
                colour = s.colour,
            );
        }
        for (i, value) in s.values.iter().enumerate() {
            let Some(v) = value else { continue };
            let _ = write!(
                out,
                r##"<circle class="chart-dot" cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"><title>{name}, {label}: {display}</title></circle>"##,
                x = x_of(i),
                y = y_of(*v),
                colour = s.colour,
                name = escape(&s.name),
                label = escape(labels.get(i).map_or("", String::as_str)),
                display = escape(s.displays.get(i).map_or("", String::as_str)),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One stage of a [`funnel`].
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelBar {
    pub label: String,
    pub value: i64,
    pub display: String,
    /// The conversion from the previous stage, as shown between the bars (none on the first).
    pub conversion: Option<String>,
}

/// Centred bars narrowing down the stages, the count in each and the conversion between them.
pub fn funnel(id: &str, title: &str, bars: &[FunnelBar]) -> String {
    const WIDTH: f64 = 640.0;
    const LABEL: f64 = 130.0;
    const BAR_H: f64 = 34.0;
    const GAP: f64 = 24.0;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let span = WIDTH - LABEL - 16.0;
    let centre = LABEL + span / 2.0;
    let height = bars.len().max(1) as f64 * (BAR_H + GAP) - GAP + 8.0;
    let desc = bars
        .iter()
        .map(|b| match &b.conversion {
            Some(c) => format!("{}: {} ({c})", b.label, b.display),
            None => format!("{}: {}", b.label, b.display),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = String::new();
    open_svg(&mut out, id, WIDTH, height, title, &desc);
    for (i, bar) in bars.iter().enumerate() {
        let y = 4.0 + i as f64 * (BAR_H + GAP);
        let width =
            (bar.value.max(0) as f64 / max * span).max(if bar.value > 0 { 3.0 } else { 0.0 });
        let label = escape(&bar.label);
        let display = escape(&bar.display);
        if let Some(conversion) = &bar.conversion {
            let _ = write!(
                out,
                r##"<text class="funnel-conversion" x="{centre:.1}" y="{cy:.1}" text-anchor="middle" fill="#475569">↓ {conversion}</text>"##,
                cy = y - 7.0,
                conversion = escape(conversion),
            );
        }
        // The count sits inside a wide bar and beside a narrow one.
        let inside = width > 90.0;
        let (tx, anchor, ink) = if inside {
            (centre, "middle", "#ffffff")
        } else {
            (centre + width / 2.0 + 6.0, "start", "#0f172a")
        };
        let _ = write!(
            out,
            r##"<g class="funnel-stage"><text class="chart-label" x="{lx:.1}" y="{ty:.1}" text-anchor="end" fill="#334155">{label}</text><rect class="chart-bar" x="{bx:.1}" y="{y:.1}" width="{width:.1}" height="{BAR_H:.1}" rx="4" fill="#1d4ed8"><title>{label}: {display}</title></rect><text class="chart-value" x="{tx:.1}" y="{ty:.1}" text-anchor="{anchor}" fill="{ink}">{display}</text></g>"##,
            lx = LABEL - 10.0,
            ty = y + BAR_H / 2.0 + 5.0,
            bx = centre - width / 2.0,
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_colours_go_from_pale_to_deep() {
        assert_eq!(heat_colour(0.0), "#eef2ff");
        assert_eq!(heat_colour(1.0), "#1e3a8a");
        assert_eq!(heat_colour(7.0), "#1e3a8a");
    }

    #[test]
    fn long_labels_split_in_two_balanced_lines() {
        assert_eq!(two_lines("Champions", 17), vec!["Champions"]);
        assert_eq!(
            two_lines("Precisam de atenção urgente", 17),
            vec!["Precisam de", "atenção urgente"]
        );
    }

    #[test]
    fn lines_break_where_values_are_missing() {
        let labels: Vec<String> = (1..=4).map(|m| format!("m{m}")).collect();
        let series = Series {
            name: "Churn <rate>".into(),
            colour: "#b42318",
            dashed: false,
            values: vec![Some(0.1), Some(0.2), None, Some(0.3)],
            displays: vec!["10%".into(), "20%".into(), "—".into(), "30%".into()],
        };
        let svg = percent_lines("c", "t", &labels, &[series], &|v| format!("{v:.1}"));
        assert_eq!(svg.matches("<polyline").count(), 1, "one run of two points");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("Churn &lt;rate&gt;"));
        assert!(!svg.contains("style=") && !svg.contains("NaN"));
    }
}
