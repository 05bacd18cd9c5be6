//! Small SVG line charts for the digest and `patrol history`: a few series over time, drawn by hand (no plotting
//! crate): axes with the first and last day, the value range, one polyline per series with its
//! label, and an optional dashed projection. A chart must not lie: a capture gap breaks the line
//! (no straight stroke across days nobody saw), a null reading is marked under the axis in its
//! series' colour, a reboot is a dotted vertical line, a label too long for the legend is cut
//! (its whole text in a tooltip), and series of very different size are drawn on charts of
//! their own ([`by_scale`]) rather than squashed at the bottom of one.

use crate::markdown::{cut, escape_xml};

pub struct Series<'a> {
    pub label: String,
    pub points: &'a [(i64, f64)],
    /// Where the series is heading: drawn dashed from its last point.
    pub projection: Option<(i64, f64)>,
    /// When the reading was null (its source answered without it): marked under the axis.
    pub nulls: &'a [i64],
}

/// A step between two readings longer than this many times the series' median step is a
/// capture gap: the line breaks there.
const GAP_STEPS: i64 = 3;

/// Series whose peaks differ by more than this factor go on charts of their own.
const SCALE_FACTOR: f64 = 10.0;

/// The legend's width in characters (11-pixel text in the right margin).
const LEGEND_CHARS: usize = 22;

/// `series` grouped so that, on each chart, the biggest peak is at most [`SCALE_FACTOR`] times
/// the smallest: a 15GB database and a 300MB exporter each keep a readable line. Biggest first.
pub fn by_scale(mut series: Vec<Series<'_>>) -> Vec<Vec<Series<'_>>> {
    let peak = |s: &Series| s.points.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
    series.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
    let mut groups: Vec<Vec<Series>> = Vec::new();
    for s in series {
        let fits = groups.last().is_some_and(|g| {
            let top = g.first().map(&peak).unwrap_or(0.0);
            peak(&s) * SCALE_FACTOR >= top
        });
        match groups.last_mut() {
            Some(g) if fits => g.push(s),
            _ => groups.push(vec![s]),
        }
    }
    groups
}

/// The longest step between readings at times `times` (oldest first) that is no capture gap:
/// [`GAP_STEPS`] times the lower middle step (of a short step and a gap, the short one is the
/// cadence). The charts, `patrol history` and the digest's growers cut their runs at it.
pub fn gap_after(times: impl Iterator<Item = i64>) -> i64 {
    let times: Vec<i64> = times.collect();
    let mut steps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_unstable();
    let cadence = steps
        .get(steps.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
        .max(1);
    GAP_STEPS * cadence
}

/// The runs of `points` between capture gaps.
fn segments(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let gap = gap_after(points.iter().map(|p| p.0));
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > gap {
            out.push(&points[start..i]);
            start = i;
        }
    }
    if start < points.len() {
        out.push(&points[start..]);
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;
const COLOURS: &[&str] = &[
    "#c0392b", "#2471a3", "#239b56", "#b9770e", "#7d3c98", "#566573",
];

/// A line chart of `series` between `t0` and `t1` (unix s); `fmt` prints a value for the axis.
pub fn line_chart(
    title: &str,
    series: &[Series],
    t0: i64,
    t1: i64,
    fmt: &dyn Fn(f64) -> String,
    day: &dyn Fn(i64) -> String,
) -> String {
    line_chart_marked(title, series, (t0, t1), &[], fmt, day)
}

/// [`line_chart`] with reboots (unix s, and whose: "vk01", or empty for the one node a chart is
/// about) drawn as dotted vertical lines.
pub fn line_chart_marked(
    title: &str,
    series: &[Series],
    (t0, t1): (i64, i64),
    reboots: &[(i64, String)],
    fmt: &dyn Fn(f64) -> String,
    day: &dyn Fn(i64) -> String,
) -> String {
    let values = series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.1)
            .chain(s.projection.map(|p| p.1))
    });
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if (hi - lo).abs() < f64::EPSILON {
        hi = lo + 1.0;
    }
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| LEFT + (t - t0) as f64 / span * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
        escape_xml(title)
    ));
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    out.push_str(&format!(
        "<path d=\"M{x0} {y0} L{x0} {y1} L{x1} {y1}\" stroke=\"#333\" fill=\"none\"/>\n"
    ));
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        x0 - 4.0,
        y0 + 4.0,
        escape_xml(&fmt(hi)),
        x0 - 4.0,
        y1,
        escape_xml(&fmt(lo))
    ));
    out.push_str(&format!(
        "<text x=\"{x0}\" y=\"{}\">{}</text>\n<text x=\"{x1}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        y1 + 16.0,
        escape_xml(&day(t0)),
        y1 + 16.0,
        escape_xml(&day(t1))
    ));
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        for run in segments(s.points) {
            if let [(t, v)] = run {
                out.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{colour}\"/>\n",
                    x(*t),
                    y(*v)
                ));
                continue;
            }
            let pts: Vec<String> = run
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            out.push_str(&format!(
                "<polyline points=\"{}\" stroke=\"{colour}\" stroke-width=\"1.5\" fill=\"none\"/>\n",
                pts.join(" ")
            ));
        }
        for t in s.nulls {
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" text-anchor=\"middle\">×<title>null</title></text>\n",
                x(*t),
                y1 + 6.0 + 4.0 * i as f64
            ));
        }
        if let (Some(&(lt, lv)), Some((pt, pv))) = (s.points.last(), s.projection) {
            out.push_str(&format!(
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-dasharray=\"5,4\"/>\n",
                x(lt),
                y(lv),
                x(pt),
                y(pv)
            ));
        }
        let row = TOP + 14.0 * (i as f64 + 1.0);
        if row > y1 {
            continue;
        }
        let label = if row + 14.0 > y1 && i + 1 < series.len() {
            format!("+{} more", series.len() - i)
        } else {
            cut(&s.label, LEGEND_CHARS)
        };
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{row}\" fill=\"{colour}\">{}<title>{}</title></text>\n",
            x1 + 8.0,
            escape_xml(&label),
            escape_xml(&s.label)
        ));
    }
    for (t, whose) in reboots.iter().filter(|(t, _)| (t0..=t1).contains(t)) {
        let xt = x(*t);
        let label = if whose.is_empty() {
            "reboot".to_string()
        } else {
            format!("reboot {whose}")
        };
        out.push_str(&format!(
            "<line x1=\"{xt:.1}\" y1=\"{y0}\" x2=\"{xt:.1}\" y2=\"{y1}\" stroke=\"#888\" stroke-dasharray=\"2,3\"/>\n<text x=\"{:.1}\" y=\"{}\" fill=\"#888\" font-size=\"9\">{}</text>\n",
            xt + 2.0,
            y0 + 10.0,
            escape_xml(&label)
        ));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_and_escapes_labels() {
        let a = [(0, 1.0), (3600, 2.0)];
        let svg = line_chart(
            "Memory <top>",
            &[Series {
                label: "vk01 a&b".into(),
                points: &a,
                projection: Some((7200, 3.0)),
                nulls: &[],
            }],
            0,
            3600,
            &|v| format!("{v}"),
            &|t| t.to_string(),
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("stroke-dasharray"), "the projection is dashed");
        assert!(svg.contains("Memory &lt;top&gt;") && svg.contains("vk01 a&amp;b"));
    }

    fn series<'a>(label: &str, points: &'a [(i64, f64)], nulls: &'a [i64]) -> Series<'a> {
        Series {
            label: label.into(),
            points,
            projection: None,
            nulls,
        }
    }

    #[test]
    fn a_capture_gap_breaks_the_line_and_nulls_and_reboots_are_marked() {
        let pts = [
            (0, 1.0),
            (900, 2.0),
            (1800, 2.0),
            (400_000, 3.0),
            (400_900, 3.5),
        ];
        let svg = line_chart_marked(
            "t",
            &[series("a", &pts, &[2700])],
            (0, 400_900),
            &[(200_000, String::new())],
            &|v| format!("{v}"),
            &|t| t.to_string(),
        );
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains(">×<title>null</title>"), "{svg}");
        assert!(svg.contains(">reboot</text>"), "{svg}");
    }

    #[test]
    fn a_gap_breaks_the_line_even_in_three_readings() {
        // Two steps, 15 minutes and 11.5 hours: the short one is the cadence.
        let pts = [(0, 1.0), (900, 2.0), (900 + 41_400, 3.0)];
        assert_eq!(segments(&pts).len(), 2);
    }

    #[test]
    fn a_long_label_is_cut_with_its_whole_text_kept_and_many_series_say_how_many_more() {
        let pts = [(0, 1.0), (900, 2.0)];
        let many: Vec<Series> = (0..30)
            .map(|i| series(&format!("vk01 a-very-long-container-name-{i}"), &pts, &[]))
            .collect();
        let svg = line_chart("t", &many, 0, 900, &|v| format!("{v}"), &|t| t.to_string());
        assert!(
            svg.contains(">vk01 a-very-long-cont…<title>vk01 a-very-long-container-name-0</title>"),
            "{svg}"
        );
        assert!(svg.contains("more<title>"), "{svg}");
        assert!(
            !svg.contains("name-29</title>") || svg.contains("more"),
            "{svg}"
        );
    }

    #[test]
    fn series_of_very_different_size_go_on_charts_of_their_own() {
        let big = [(0, 15e9), (900, 16e9)];
        let mid = [(0, 2e9), (900, 2e9)];
        let small = [(0, 3e8), (900, 3.2e8)];
        let groups = by_scale(vec![
            series("small", &small, &[]),
            series("big", &big, &[]),
            series("mid", &mid, &[]),
        ]);
        let labels: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.label.as_str()).collect())
            .collect();
        assert_eq!(labels, vec![vec!["big", "mid"], vec!["small"]]);
    }
}
