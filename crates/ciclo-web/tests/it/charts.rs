//! The SVG charts: scales, marks, labels, escaping, empty and all-zero data.

use ciclo_web::charts::*;

fn months(values: &[i64]) -> Vec<ChartPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| ChartPoint::new(format!("m{i}"), *v, v.to_string()))
        .collect()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn nice_steps() {
    for (max, ticks, step) in [
        (0, 4, 1),
        (3, 4, 1),
        (4, 4, 1),
        (5, 4, 2),
        (10, 4, 5),
        (37, 4, 10),
        (100, 4, 50),
        (101, 4, 50),
        (123_456, 4, 50_000),
        (999_999, 4, 500_000),
    ] {
        let s = nice_step(max, ticks);
        assert_eq!(s, step, "max {max}");
        assert!(s * ticks >= max, "covers the maximum");
    }
}

#[test]
fn bar_chart_has_one_bar_per_point_and_is_accessible() {
    let points = vec![
        ChartPoint::new("Alcance", 120, "120"),
        ChartPoint::new("Aquisição", 45, "45"),
        ChartPoint::new("Lealdade", 0, "0"),
    ];
    let svg = bar_chart("stages", "Clientes por etapa", &points);
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    assert_eq!(count(&svg, "<rect class=\"chart-bar\""), 3);
    assert!(svg.contains(r#"role="img""#));
    assert!(svg.contains(r#"<title id="stages-title">Clientes por etapa</title>"#));
    assert!(
        svg.contains("Alcance: 120; Aquisição: 45; Lealdade: 0"),
        "desc lists the data"
    );
    assert!(svg.contains(r#"width="0.0""#), "a zero is an empty bar");
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    assert!(!svg.contains("style="), "no inline styles (CSP)");
}

#[test]
fn labels_are_escaped() {
    let points = vec![ChartPoint::new(
        "<script>alert(1)</script>",
        1,
        "\"1\" & co",
    )];
    for svg in [
        bar_chart("x", "T<i>", &points),
        column_chart("x", "T<i>", &points, &|v| v.to_string()),
        line_chart("x", "T<i>", &points, &|v| v.to_string()),
    ] {
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("&quot;1&quot; &amp; co"));
        assert!(svg.contains("T&lt;i&gt;"));
    }
}

#[test]
fn column_chart_over_24_months() {
    let values: Vec<i64> = (0..24).map(|i| i * 10).collect();
    let svg = column_chart("orders", "Pedidos", &months(&values), &|v| format!("{v}"));
    assert_eq!(count(&svg, "<rect class=\"chart-bar\""), 24);
    // The y axis: gridlines from 0 to the tightest nice maximum covering 230 (5 × 50).
    assert_eq!(count(&svg, "<line class=\"chart-grid\""), 6);
    assert!(svg.contains(">0</text>") && svg.contains(">250</text>"));
    // At most 6 month labels, the newest always among them.
    let x_labels = count(&svg, "text-anchor=\"middle\"");
    assert!((4..=6).contains(&x_labels), "{x_labels} labels");
    assert!(svg.contains(">m23</text>"));
}

#[test]
fn line_chart_has_a_point_per_month() {
    let svg = line_chart("revenue", "Receita", &months(&[100, 0, 250, 75]), &|v| {
        format!("R$ {v}")
    });
    assert_eq!(count(&svg, "<circle class=\"chart-dot\""), 4);
    let points = svg
        .split("<polyline class=\"chart-line\" points=\"")
        .nth(1)
        .unwrap();
    let points = points.split('"').next().unwrap();
    assert_eq!(points.split(' ').count(), 4);
    assert!(svg.contains(">R$ 0</text>"));
}

#[test]
fn empty_and_all_zero_data_draw_without_errors() {
    for svg in [
        bar_chart("a", "A", &[]),
        column_chart("b", "B", &[], &|v| v.to_string()),
        line_chart("c", "C", &[], &|v| v.to_string()),
        column_chart("d", "D", &months(&[0, 0, 0]), &|v| v.to_string()),
        line_chart("e", "E", &months(&[0, 0]), &|v| v.to_string()),
    ] {
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }
}
