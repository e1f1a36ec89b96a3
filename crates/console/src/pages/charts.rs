//! Bar charts drawn on the server as inline SVG (no script, no external asset), for the board.
//!
//! [`bar_chart`] draws one bar per day: the series either stacked (calls by language, outcomes)
//! or overlaid (a wide bar for the maximum, a narrow one for the average). Every chart has a
//! `<title>` and a `<desc>` (read by screen readers: `role="img"`), a legend, axis labels,
//! horizontal grid lines with their values, and a `<title>` on each bar with its day, series and
//! value (a tooltip on a laptop). The output depends only on the input: no randomness, fixed
//! number formatting, so tests compare heights.
//!
//! The days a chart covers are the hotline's (`hotline_store::Zone::days_ending`);
//! [`from_stats`] turns the store's [`DailyStat`] rows into the three charts' series.

use std::fmt::Write as _;

use hotline_store::{DailyStat, Disposition};

/// The drawing area: the SVG's `viewBox` is `0 0 WIDTH HEIGHT`; it scales to the page width.
pub(crate) const WIDTH: f64 = 640.0;
/// See [`WIDTH`].
pub(crate) const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 42.0;
/// Height of the plot (between the top margin and the x axis).
pub(crate) const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;

/// How the series of a chart share a day's bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One on top of the other (parts of a whole).
    Stacked,
    /// Drawn over each other from the first (widest) to the last (narrowest): e.g. the maximum
    /// and the average of the same measure.
    Overlaid,
}

/// One series: its legend label, colour and one value per day.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) color: &'static str,
    pub(crate) values: Vec<f64>,
}

/// What [`bar_chart`] draws.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// A short id, unique on the page (for `aria-labelledby`).
    pub(crate) id: &'static str,
    pub(crate) title: String,
    /// A sentence for screen readers (what the chart shows).
    pub(crate) desc: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    /// The days (`YYYY-MM-DD`), oldest first: one bar each.
    pub(crate) days: Vec<String>,
    pub(crate) series: Vec<Series>,
    pub(crate) mode: Mode,
    /// Decimals of the values in the bars' titles and the axis (0 for counts).
    pub(crate) decimals: usize,
}

/// The smallest "round" number (1, 2 or 5 × 10ⁿ) at or above `v`, at least 1: the top of the y
/// axis.
pub(crate) fn nice_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 1.0 {
        return 1.0;
    }
    let mut unit = 1.0;
    while unit * 10.0 < v {
        unit *= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if unit * m >= v {
            return unit * m;
        }
    }
    unit * 10.0
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Draws `chart` as an `<svg>` element.
pub(crate) fn bar_chart(chart: &Chart) -> String {
    let n = chart.days.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let slot = plot_w / n as f64;
    let top_value = (0..chart.days.len())
        .map(|d| match chart.mode {
            Mode::Stacked => chart
                .series
                .iter()
                .map(|s| s.values.get(d).copied().unwrap_or(0.0))
                .sum(),
            Mode::Overlaid => chart
                .series
                .iter()
                .map(|s| s.values.get(d).copied().unwrap_or(0.0))
                .fold(0.0, f64::max),
        })
        .fold(0.0, f64::max);
    let max = nice_max(top_value);
    let y_of = |v: f64| TOP + PLOT_HEIGHT - v / max * PLOT_HEIGHT;
    let id = chart.id;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="chart-{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-{id}-title chart-{id}-desc" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        s,
        r#"<title id="chart-{id}-title">{}</title><desc id="chart-{id}-desc">{}</desc>"#,
        escape(&chart.title),
        escape(&chart.desc)
    );
    // The title, drawn too.
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="14" font-size="13" font-weight="600" fill="#1b1f24">{}</text>"##,
        escape(&chart.title)
    );
    // Legend, on one line under the title.
    let mut x = LEFT;
    for series in &chart.series {
        let _ = write!(
            s,
            r##"<rect x="{x}" y="20" width="10" height="10" fill="{}"/><text x="{}" y="29" font-size="11" fill="#1b1f24">{}</text>"##,
            series.color,
            x + 14.0,
            escape(&series.label)
        );
        x += 24.0 + 6.5 * series.label.chars().count() as f64;
    }
    // Grid lines and their values.
    let div = divisions(max, chart.decimals);
    for i in 0..=div {
        let v = max * f64::from(i) / f64::from(div);
        let y = y_of(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#dde1e6"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#5b6570">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 3.5,
            format_value(v, chart.decimals)
        );
    }
    // Axis labels.
    let _ = write!(
        s,
        r##"<text x="12" y="{:.1}" font-size="11" text-anchor="middle" fill="#5b6570" transform="rotate(-90 12 {:.1})">{}</text>"##,
        TOP + PLOT_HEIGHT / 2.0,
        TOP + PLOT_HEIGHT / 2.0,
        escape(&chart.y_label)
    );
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#5b6570">{}</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 4.0,
        escape(&chart.x_label)
    );
    // Bars.
    for (d, day) in chart.days.iter().enumerate() {
        let x0 = LEFT + slot * d as f64;
        let mut base = 0.0;
        for (k, series) in chart.series.iter().enumerate() {
            let v = series.values.get(d).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (bottom, top) = match chart.mode {
                Mode::Stacked => (base, base + v),
                Mode::Overlaid => (0.0, v),
            };
            base = top;
            let (pad, w) = match chart.mode {
                Mode::Stacked => (slot * 0.15, slot * 0.7),
                Mode::Overlaid => {
                    let w = slot * 0.7 / (1.0 + k as f64);
                    ((slot - w) / 2.0, w)
                }
            };
            let y = y_of(top);
            let h = y_of(bottom) - y;
            let _ = write!(
                s,
                r#"<rect class="bar" data-series="{k}" data-day="{day}" x="{:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"><title>{day} · {}: {}</title></rect>"#,
                x0 + pad,
                series.color,
                escape(&series.label),
                format_value(v, chart.decimals)
            );
        }
        // A day label every 5 days (and the last), `MM-DD`.
        if d % 5 == 0 || d + 1 == chart.days.len() {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#5b6570">{}</text>"##,
                x0 + slot / 2.0,
                TOP + PLOT_HEIGHT + 14.0,
                escape(day.get(5..).unwrap_or(day))
            );
        }
    }
    // The x axis.
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#5b6570"/>"##,
        WIDTH - RIGHT,
        TOP + PLOT_HEIGHT,
        TOP + PLOT_HEIGHT
    );
    s.push_str("</svg>");
    s
}

/// How many intervals the y axis has: 4 if its values show exactly with `decimals` decimals,
/// else 5, 2 or 1.
fn divisions(max: f64, decimals: usize) -> u32 {
    let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(0));
    [4, 5, 2, 1]
        .into_iter()
        .find(|&d| (max / f64::from(d) * scale).fract().abs() < 1e-9)
        .unwrap_or(1)
}

fn format_value(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// The per-day series of the board's three charts, from [`DailyStat`] rows, over `days`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DaySeries {
    /// Calls by language: Spanish, Quechua, none chosen.
    pub(crate) by_language: [Vec<f64>; 3],
    /// Calls by outcome: message, operator, abandoned, other (rejected, failed, not ended).
    pub(crate) by_outcome: [Vec<f64>; 4],
    /// Queue waits in seconds: average, maximum (0 when nobody waited).
    pub(crate) wait_avg_s: Vec<f64>,
    /// See `wait_avg_s`.
    pub(crate) wait_max_s: Vec<f64>,
}

/// Sums `stats` into one value per day of `days` (rows of other days are ignored).
pub(crate) fn from_stats(days: &[String], stats: &[DailyStat]) -> DaySeries {
    let n = days.len();
    let mut out = DaySeries {
        by_language: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
        by_outcome: [vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]],
        wait_avg_s: vec![0.0; n],
        wait_max_s: vec![0.0; n],
    };
    let mut wait_sum = vec![0i64; n];
    let mut wait_count = vec![0u64; n];
    for row in stats {
        let Some(d) = days.iter().position(|day| *day == row.day) else {
            continue;
        };
        let calls = row.calls as f64;
        let lang = match row.language.as_deref() {
            Some("es") => 0,
            Some("qu") => 1,
            _ => 2,
        };
        out.by_language[lang][d] += calls;
        let outcome = match row.disposition {
            Some(Disposition::Message) => 0,
            Some(Disposition::Operator) => 1,
            Some(Disposition::Abandoned) => 2,
            _ => 3,
        };
        out.by_outcome[outcome][d] += calls;
        wait_sum[d] += row.queue_wait_ms_sum;
        wait_count[d] += row.queue_wait_count;
        out.wait_max_s[d] = out.wait_max_s[d].max(row.queue_wait_ms_max as f64 / 1000.0);
    }
    for d in 0..n {
        if wait_count[d] > 0 {
            out.wait_avg_s[d] = wait_sum[d] as f64 / wait_count[d] as f64 / 1000.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(day: &str, language: Option<&str>, disposition: Option<Disposition>) -> DailyStat {
        DailyStat {
            day: day.into(),
            language: language.map(Into::into),
            disposition,
            calls: 0,
            queue_wait_count: 0,
            queue_wait_ms_sum: 0,
            queue_wait_ms_max: 0,
        }
    }

    #[test]
    fn round_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(10.0), 10.0);
        assert_eq!(nice_max(11.0), 20.0);
        assert_eq!(nice_max(42.0), 50.0);
        assert_eq!(nice_max(180.5), 200.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn stats_become_series() {
        let days = vec!["2026-10-31".to_owned(), "2026-11-01".to_owned()];
        let stats = vec![
            DailyStat {
                calls: 3,
                ..stat("2026-10-31", Some("es"), Some(Disposition::Message))
            },
            DailyStat {
                calls: 2,
                queue_wait_count: 2,
                queue_wait_ms_sum: 30_000,
                queue_wait_ms_max: 20_000,
                ..stat("2026-11-01", Some("qu"), Some(Disposition::Operator))
            },
            DailyStat {
                calls: 1,
                queue_wait_count: 1,
                queue_wait_ms_sum: 60_000,
                queue_wait_ms_max: 60_000,
                ..stat("2026-11-01", Some("es"), Some(Disposition::Abandoned))
            },
            DailyStat {
                calls: 4,
                ..stat("2026-11-01", None, None)
            },
            DailyStat {
                calls: 1,
                ..stat("2026-11-01", Some("es"), Some(Disposition::Failed))
            },
            // Outside the days: ignored.
            DailyStat {
                calls: 9,
                ..stat("2026-09-01", Some("es"), None)
            },
        ];
        let s = from_stats(&days, &stats);
        assert_eq!(s.by_language[0], [3.0, 2.0]);
        assert_eq!(s.by_language[1], [0.0, 2.0]);
        assert_eq!(s.by_language[2], [0.0, 4.0]);
        assert_eq!(s.by_outcome[0], [3.0, 0.0]);
        assert_eq!(s.by_outcome[1], [0.0, 2.0]);
        assert_eq!(s.by_outcome[2], [0.0, 1.0]);
        assert_eq!(s.by_outcome[3], [0.0, 5.0]);
        // (30 s + 60 s) / 3 waits = 30 s; the longest 60 s.
        assert_eq!(s.wait_avg_s, [0.0, 30.0]);
        assert_eq!(s.wait_max_s, [0.0, 60.0]);
    }

    fn chart(mode: Mode, series: Vec<Series>) -> Chart {
        Chart {
            id: "t",
            title: "Calls <per> day".into(),
            desc: "Calls per day by language".into(),
            x_label: "Day".into(),
            y_label: "Calls".into(),
            days: vec!["2026-10-31".into(), "2026-11-01".into()],
            series,
            mode,
            decimals: 0,
        }
    }

    fn bars(svg: &str) -> Vec<(String, String, String)> {
        // (series, day, "y height") of each bar.
        svg.split("<rect class=\"bar\"")
            .skip(1)
            .map(|b| {
                let attr = |name: &str| {
                    let p = format!(" {name}=\"");
                    let rest = &b[b.find(&p).unwrap() + p.len()..];
                    rest[..rest.find('"').unwrap()].to_owned()
                };
                (
                    attr("data-series"),
                    attr("data-day"),
                    format!("{} {}", attr("y"), attr("height")),
                )
            })
            .collect()
    }

    #[test]
    fn stacked_bars_have_the_expected_heights() {
        let svg = bar_chart(&chart(
            Mode::Stacked,
            vec![
                Series {
                    label: "Español".into(),
                    color: "#0b57a4",
                    values: vec![3.0, 6.0],
                },
                Series {
                    label: "Quechua".into(),
                    color: "#c2410c",
                    values: vec![1.0, 4.0],
                },
            ],
        ));
        // Tallest day 10 → axis 0..10; the plot is 184 high, from y=34 to y=218.
        assert_eq!(PLOT_HEIGHT, 184.0);
        assert_eq!(
            bars(&svg),
            [
                ("0".into(), "2026-10-31".into(), "162.8 55.2".into()),
                ("1".into(), "2026-10-31".into(), "144.4 18.4".into()),
                ("0".into(), "2026-11-01".into(), "107.6 110.4".into()),
                ("1".into(), "2026-11-01".into(), "34.0 73.6".into()),
            ]
        );
        // Accessible and labelled: title (escaped), description, legend, axes, bar titles.
        assert!(
            svg.starts_with("<svg class=\"chart\" id=\"chart-t\""),
            "{svg}"
        );
        assert!(svg.contains(r#"role="img" aria-labelledby="chart-t-title chart-t-desc""#));
        assert!(svg.contains(r#"<title id="chart-t-title">Calls &lt;per&gt; day</title>"#));
        assert!(svg.contains("<desc id=\"chart-t-desc\">Calls per day by language</desc>"));
        assert!(svg.contains(">Español</text>") && svg.contains(">Quechua</text>"));
        assert!(svg.contains(">Day</text>") && svg.contains(">Calls</text>"));
        assert!(svg.contains("<title>2026-11-01 · Quechua: 4</title>"));
        assert!(svg.contains(">10-31</text>") && svg.contains(">11-01</text>"));
        // Whole grid values for counts: 0, 2, 4, ... 10.
        for v in [0, 2, 4, 6, 8, 10] {
            assert!(svg.contains(&format!(">{v}</text>")), "{v}");
        }
        assert_eq!(divisions(10.0, 0), 5);
        assert_eq!(divisions(20.0, 0), 4);
        assert_eq!(divisions(1.0, 0), 1);
        assert_eq!(divisions(50.0, 1), 4);
        // 0, 0.2, … 1.0 rather than 0.25 shown as "0.2".
        assert_eq!(divisions(1.0, 1), 5);
        assert!(svg.ends_with("</svg>"));
        // Deterministic.
        assert_eq!(
            svg,
            bar_chart(&chart(
                Mode::Stacked,
                vec![
                    Series {
                        label: "Español".into(),
                        color: "#0b57a4",
                        values: vec![3.0, 6.0],
                    },
                    Series {
                        label: "Quechua".into(),
                        color: "#c2410c",
                        values: vec![1.0, 4.0],
                    },
                ],
            ))
        );
    }

    #[test]
    fn overlaid_bars_start_at_zero_and_narrow() {
        let mut c = chart(
            Mode::Overlaid,
            vec![
                Series {
                    label: "max".into(),
                    color: "#f0b37e",
                    values: vec![0.0, 40.0],
                },
                Series {
                    label: "avg".into(),
                    color: "#c2410c",
                    values: vec![0.0, 12.5],
                },
            ],
        );
        c.decimals = 1;
        let svg = bar_chart(&c);
        // Axis 0..50: 40 → 147.2 high, 12.5 → 46 high; no bar for the empty day.
        assert_eq!(
            bars(&svg),
            [
                ("0".into(), "2026-11-01".into(), "70.8 147.2".into()),
                ("1".into(), "2026-11-01".into(), "172.0 46.0".into()),
            ]
        );
        assert!(svg.contains("<title>2026-11-01 · avg: 12.5</title>"));
        // Slot 290 wide: the max bar 203 wide, the average half that.
        assert!(svg.contains(r#"width="203.0""#) && svg.contains(r#"width="101.5""#));
    }

    #[test]
    fn an_empty_chart_still_has_axes() {
        let svg = bar_chart(&chart(Mode::Stacked, vec![]));
        assert!(bars(&svg).is_empty());
        assert!(svg.contains(">1</text>"), "{svg}");
    }
}
