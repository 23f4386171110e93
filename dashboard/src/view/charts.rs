//! Charts drawn on the server as inline SVG: no chart library, no JavaScript. Each chart is
//! a few polylines over consecutive buckets ([`Chart`]), a dashed limit line where there is
//! one, the largest value on the axis, and the time at both ends. Pure.

use std::fmt::Write;

use herald_store::history::{Chart, Series};
use maud::{Markup, html};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 18.0;
const TOP: f64 = 8.0;

/// One line of a chart: its series, its CSS class (the colour), its name in the legend.
pub struct Line {
    pub series: Series,
    pub class: &'static str,
    pub label: &'static str,
}

/// A chart of `lines` over `chart`'s buckets, with a dashed `limit` per bucket when given.
pub fn svg(chart: &Chart, lines: &[Line], limit: Option<f64>, span_label: &str) -> Markup {
    let n = chart.points.len().max(1);
    let peak = lines
        .iter()
        .flat_map(|line| chart.points.iter().map(|p| p.get(line.series) as f64))
        .fold(0.0, f64::max);
    let top = limit.unwrap_or(0.0).max(peak).max(1.0) * 1.1;
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);
    let polyline = |series: Series| {
        let mut points = String::new();
        for (i, p) in chart.points.iter().enumerate() {
            let _ = write!(points, "{:.1},{:.1} ", x(i), y(p.get(series) as f64));
        }
        points
    };
    let title = lines
        .iter()
        .map(|line| format!("{}: {}", line.label, chart.total(line.series)))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) preserveAspectRatio="none" {
                title { (title) }
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) {}
                line.axis x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - 4.0) y2=(TOP + plot_h) {}
                text.tick x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (format_value(top / 1.1)) }
                text.tick x=(LEFT - 4.0) y=(TOP + plot_h) text-anchor="end" { "0" }
                text.tick x=(LEFT) y=(HEIGHT - 4.0) { (span_label) }
                text.tick x=(WIDTH - 4.0) y=(HEIGHT - 4.0) text-anchor="end" { "now" }
                @if let Some(limit) = limit {
                    line.limit x1=(LEFT) y1=(format!("{:.1}", y(limit))) x2=(WIDTH - 4.0) y2=(format!("{:.1}", y(limit))) {}
                }
                @for line in lines {
                    polyline class=(line.class) points=(polyline(line.series)) {}
                }
            }
            figcaption {
                @for line in lines {
                    span class=(format!("key {}", line.class)) { (line.label) " " strong { (chart.total(line.series)) } }
                }
                @if let Some(limit) = limit {
                    span.key.limit { "limit " strong { (format_value(limit)) } " per bucket" }
                }
            }
        }
    }
}

/// `12`, `4.5`, `1.2k`.
pub fn format_value(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_store::history::Point;

    #[test]
    fn a_chart_draws_each_line_and_the_limit() {
        let chart = Chart {
            bucket_secs: 10,
            start: 0,
            points: vec![
                Point {
                    requests: 3,
                    rate_limited: 1,
                    ..Point::default()
                },
                Point {
                    requests: 5,
                    ..Point::default()
                },
            ],
        };
        let lines = [
            Line {
                series: Series::Requests,
                class: "requests",
                label: "requests",
            },
            Line {
                series: Series::RateLimited,
                class: "rl",
                label: "429s",
            },
        ];
        let svg = svg(&chart, &lines, Some(4.0), "-20 s").into_string();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("class=\"limit\""), "{svg}");
        assert!(svg.contains("requests: 8, 429s: 1"), "{svg}");
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(12_345.0), "12.3k");
    }
}
