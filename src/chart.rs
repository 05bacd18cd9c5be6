//! Small SVG line charts for the digest and `patrol history`: a few series over time, drawn by hand (no plotting
//! crate): axes with the first and last day, the value range, one polyline per series with its
//! label, and an optional dashed projection.

use crate::markdown::escape_xml;

pub struct Series<'a> {
    pub label: String,
    pub points: &'a [(i64, f64)],
    /// Where the series is heading: drawn dashed from its last point.
    pub projection: Option<(i64, f64)>,
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
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        if !pts.is_empty() {
            out.push_str(&format!(
                "<polyline points=\"{}\" stroke=\"{colour}\" stroke-width=\"1.5\" fill=\"none\"/>\n",
                pts.join(" ")
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
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>\n",
            x1 + 8.0,
            TOP + 14.0 * (i as f64 + 1.0),
            escape_xml(&s.label)
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
}
