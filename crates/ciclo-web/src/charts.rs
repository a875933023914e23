//! Charts drawn on the server as inline SVG: horizontal bars (customers by lifecycle stage),
//! columns (new customers and orders per month) and a line (revenue per month).
//!
//! No JavaScript and no chart library: each chart is a few dozen elements computed here,
//! sized by a `viewBox` so it scales to any width, with a `<title>`/`<desc>` and a `<title>` on
//! every mark so screen readers and mouse hover both get the numbers. Labels and values are
//! formatted by the caller (in the operator's language) and escaped here. Colours come from
//! CSS classes (`chart-bar`, `chart-line`…) with presentation attributes as a fallback; no
//! inline `style`, so the console's Content-Security-Policy can forbid inline styles.

use std::fmt::Write;

/// One mark of a chart: its axis label, its value, and the value as the reader should see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint {
    pub label: String,
    pub value: i64,
    pub display: String,
}

impl ChartPoint {
    pub fn new(label: impl Into<String>, value: i64, display: impl Into<String>) -> Self {
        ChartPoint {
            label: label.into(),
            value,
            display: display.into(),
        }
    }
}

/// Escapes text for SVG/XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The smallest "nice" step (1, 2 or 5 × 10ⁿ) such that `ticks` steps cover `max`. At least 1.
pub fn nice_step(max: i64, ticks: i64) -> i64 {
    let ticks = ticks.max(1);
    let raw = (max.max(0) + ticks - 1) / ticks;
    if raw <= 1 {
        return 1;
    }
    let mut magnitude: i64 = 1;
    while magnitude <= raw / 10 {
        magnitude *= 10;
    }
    for factor in [1, 2, 5, 10] {
        let step = factor * magnitude;
        if step >= raw {
            return step;
        }
    }
    10 * magnitude
}

fn open_svg(
    out: &mut String,
    id: &str,
    width: u32,
    height: u32,
    title: &str,
    points: &[ChartPoint],
) {
    let id = escape(id);
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(out, r#"<title id="{id}-title">{}</title>"#, escape(title));
    let desc = points
        .iter()
        .map(|p| format!("{}: {}", p.label, p.display))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(out, r#"<desc id="{id}-desc">{}</desc>"#, escape(&desc));
}

/// Horizontal bars, one row per point, the value written after each bar.
pub fn bar_chart(id: &str, title: &str, points: &[ChartPoint]) -> String {
    const WIDTH: u32 = 640;
    const ROW: u32 = 30;
    const LABEL: f64 = 150.0;
    const VALUE_ROOM: f64 = 110.0;
    let height = (points.len() as u32).max(1) * ROW + 8;
    let max = points.iter().map(|p| p.value).max().unwrap_or(0).max(1) as f64;
    let span = f64::from(WIDTH) - LABEL - VALUE_ROOM;
    let mut out = String::new();
    open_svg(&mut out, id, WIDTH, height, title, points);
    for (i, point) in points.iter().enumerate() {
        let y = 4.0 + (i as f64) * f64::from(ROW);
        let width =
            (point.value.max(0) as f64 / max * span).max(if point.value > 0 { 2.0 } else { 0.0 });
        let label = escape(&point.label);
        let display = escape(&point.display);
        let _ = write!(
            out,
            r##"<g class="chart-row"><text class="chart-label" x="{lx:.1}" y="{ty:.1}" text-anchor="end" fill="#334155">{label}</text><rect class="chart-bar" x="{LABEL:.1}" y="{by:.1}" width="{width:.1}" height="18" rx="3" fill="#2563eb"><title>{label}: {display}</title></rect><text class="chart-value" x="{vx:.1}" y="{ty:.1}" fill="#0f172a">{display}</text></g>"##,
            lx = LABEL - 8.0,
            ty = y + 14.0,
            by = y + 1.0,
            vx = LABEL + width + 6.0,
        );
    }
    out.push_str("</svg>");
    out
}

/// Layout shared by the column and line charts: a y axis with 3 to 5 intervals on the left,
/// one slot per point, and at most `MAX_X_LABELS` labels under the slots.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    top: f64,
    bottom: f64,
    ticks: i64,
    step: i64,
    slots: usize,
}

const MAX_X_LABELS: usize = 6;
/// Room right of the plot, so the newest month's label is not cut.
const RIGHT: f64 = 28.0;

impl Frame {
    fn new(points: &[ChartPoint]) -> Frame {
        let max = points.iter().map(|p| p.value).max().unwrap_or(0);
        // The tightest nice axis with 3 to 5 intervals (230 → 0, 50, …, 250 rather than 400).
        let (ticks, step) = [4, 5, 3]
            .into_iter()
            .map(|ticks| (ticks, nice_step(max, ticks)))
            .min_by_key(|(ticks, step)| ticks * step)
            .unwrap_or((4, 1));
        Frame {
            width: 640.0,
            height: 240.0,
            left: 104.0,
            top: 12.0,
            bottom: 28.0,
            ticks,
            step,
            slots: points.len().max(1),
        }
    }

    fn plot_height(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    fn slot_width(&self) -> f64 {
        (self.width - self.left - RIGHT) / self.slots as f64
    }

    fn x_center(&self, i: usize) -> f64 {
        self.left + self.slot_width() * (i as f64 + 0.5)
    }

    fn y_of(&self, value: i64) -> f64 {
        let top = (self.step * self.ticks) as f64;
        self.top + self.plot_height() * (1.0 - value.max(0) as f64 / top)
    }

    fn axes(&self, out: &mut String, points: &[ChartPoint], axis_label: &dyn Fn(i64) -> String) {
        for tick in 0..=self.ticks {
            let value = self.step * tick;
            let y = self.y_of(value);
            let _ = write!(
                out,
                r##"<line class="chart-grid" x1="{x1:.1}" x2="{x2:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text class="chart-axis" x="{tx:.1}" y="{ty:.1}" text-anchor="end" fill="#475569">{label}</text>"##,
                x1 = self.left,
                x2 = self.width - RIGHT,
                tx = self.left - 6.0,
                ty = y + 4.0,
                label = escape(&axis_label(value)),
            );
        }
        let every = points.len().div_ceil(MAX_X_LABELS).max(1);
        for (i, point) in points.iter().enumerate() {
            // Label from the newest backwards, so the latest month always has its label.
            if !(points.len() - 1 - i).is_multiple_of(every) {
                continue;
            }
            let _ = write!(
                out,
                r##"<text class="chart-axis" x="{x:.1}" y="{y:.1}" text-anchor="middle" fill="#475569">{label}</text>"##,
                x = self.x_center(i),
                y = self.height - 8.0,
                label = escape(&point.label),
            );
        }
    }
}

/// Vertical columns over labelled slots (months), with a y axis labelled by `axis_label`.
pub fn column_chart(
    id: &str,
    title: &str,
    points: &[ChartPoint],
    axis_label: &dyn Fn(i64) -> String,
) -> String {
    let frame = Frame::new(points);
    let mut out = String::new();
    open_svg(
        &mut out,
        id,
        frame.width as u32,
        frame.height as u32,
        title,
        points,
    );
    frame.axes(&mut out, points, axis_label);
    let bar = (frame.slot_width() * 0.7).max(1.0);
    for (i, point) in points.iter().enumerate() {
        let y = frame.y_of(point.value);
        let height = (frame.top + frame.plot_height() - y).max(0.0);
        let _ = write!(
            out,
            r##"<rect class="chart-bar" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{height:.1}" rx="2" fill="#2563eb"><title>{label}: {display}</title></rect>"##,
            x = frame.x_center(i) - bar / 2.0,
            label = escape(&point.label),
            display = escape(&point.display),
        );
    }
    out.push_str("</svg>");
    out
}

/// A line through the points with a shaded area under it and a dot per point.
pub fn line_chart(
    id: &str,
    title: &str,
    points: &[ChartPoint],
    axis_label: &dyn Fn(i64) -> String,
) -> String {
    let frame = Frame::new(points);
    let mut out = String::new();
    open_svg(
        &mut out,
        id,
        frame.width as u32,
        frame.height as u32,
        title,
        points,
    );
    frame.axes(&mut out, points, axis_label);
    if !points.is_empty() {
        let coords: Vec<(f64, f64)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (frame.x_center(i), frame.y_of(p.value)))
            .collect();
        let line = coords
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ");
        let base = frame.top + frame.plot_height();
        let area = format!(
            "{:.1},{base:.1} {line} {:.1},{base:.1}",
            coords[0].0,
            coords[coords.len() - 1].0
        );
        let _ = write!(
            out,
            r##"<polygon class="chart-area" points="{area}" fill="#2563eb" fill-opacity="0.12"/><polyline class="chart-line" points="{line}" fill="none" stroke="#2563eb" stroke-width="2.5" stroke-linejoin="round"/>"##
        );
        for ((x, y), point) in coords.iter().zip(points) {
            let _ = write!(
                out,
                r##"<circle class="chart-dot" cx="{x:.1}" cy="{y:.1}" r="3.5" fill="#2563eb"><title>{label}: {display}</title></circle>"##,
                label = escape(&point.label),
                display = escape(&point.display),
            );
        }
    }
    out.push_str("</svg>");
    out
}
