#![doc = include_str!("clock_skew.md")]

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::tomlread::Ctx;
use crate::units::{fmt_duration, fmt_number};

pub const SPEC: KindSpec = KindSpec {
    name: "clock-skew",
    doc: include_str!("clock_skew.md"),
    target: Target::Node,
    event: false,
    variables: &["reason", "offset", "ahead", "source", "stamp", "ntp"],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub tolerance_s: f64,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    Some(Kind::ClockSkew(Params {
        tolerance_s: p.duration(ctx, "tolerance").unwrap_or(300.0),
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let at = snap.captured_at;
        let mut reasons = Vec::new();
        let offset_s = snap
            .host
            .as_ref()
            .and_then(|h| h.clock_offset_ms)
            .map(|ms| ms / 1000.0);
        if let Some(off) = offset_s.filter(|o| o.abs() > p.tolerance_s) {
            reasons.push(format!(
                "its clock is {} {} the collector's",
                fmt_duration(off.abs()),
                if off > 0.0 { "ahead of" } else { "behind" }
            ));
        }
        let ntp = snap.host.as_ref().and_then(|h| h.ntp_synced);
        // The line stamped furthest in the future over the recent captures: such lines come
        // now and then among correct ones, so one capture without them proves nothing.
        let mut ahead: Option<(f64, String, String)> = None;
        for recent in node.recent() {
            for stream in &recent.logs {
                for t in &stream.templates {
                    let Some(last) = t.last_ts else { continue };
                    let secs = (last - recent.captured_at).num_seconds() as f64;
                    if secs > p.tolerance_s && ahead.as_ref().is_none_or(|a| secs > a.0) {
                        let stamp = t.last_ts_raw.clone().unwrap_or_else(|| last.to_rfc3339());
                        ahead = Some((secs, stream.source.clone(), stamp));
                    }
                }
            }
        }
        if let Some((secs, source, stamp)) = &ahead {
            reasons.push(format!(
                "log {} has lines stamped {} ({} in the future) among lines with the right time",
                code_span(source),
                code_span(stamp),
                fmt_duration(*secs)
            ));
        }
        if reasons.is_empty() {
            if ntp == Some(false) {
                // Lines stamped ahead come and go; what made them, an unsynchronised clock,
                // is still there: the finding resolves when NTP is fixed, not when the logs
                // happen to be quiet.
                out.push(Candidate::holding(node, "clock", "skew", at.timestamp()));
            } else if offset_s.is_none() && node.recent().all(|s| s.logs.is_empty()) {
                out.push(Candidate::undecided(node, "clock", "skew", at.timestamp()));
            }
            continue;
        }
        if ntp == Some(false) {
            reasons.push("NTP reports the clock as not synchronised".into());
        }
        let mut c = Candidate::new(node, "clock", "skew", at.timestamp()).in_any_state();
        let reason = match (&ahead, offset_s.filter(|o| o.abs() > p.tolerance_s)) {
            (Some((secs, source, _)), _) => {
                format!(
                    "lines {} ahead in log {}",
                    fmt_duration(*secs),
                    code_span(source)
                )
            }
            (None, Some(off)) => format!(
                "clock {} {}",
                fmt_duration(off.abs()),
                if off > 0.0 { "ahead" } else { "behind" }
            ),
            (None, None) => String::new(),
        };
        c.value("reason", None, reason);
        c.value(
            "offset",
            offset_s,
            offset_s
                .map(|o| format!("{} s", fmt_number(o, 1)))
                .unwrap_or_else(|| "-".into()),
        );
        let (secs, source, stamp) = ahead.unwrap_or((0.0, "-".into(), "-".into()));
        c.value("ahead", Some(secs), fmt_duration(secs));
        c.value("source", None, code_span(&source));
        c.value("stamp", None, code_span(&stamp));
        c.value(
            "ntp",
            None,
            match ntp {
                Some(true) => "synchronised",
                Some(false) => "not synchronised",
                None => "unknown",
            },
        );
        c.evidence = format!("On {}, {}.", node.node, reasons.join("; "));
        out.push(c);
    }
}
