//! Rule kinds: the code behind rules. Each kind lives in its own file, named after its id, with
//! its doc (`<kind>.md`) beside it; this module lists them once, in the `registry!` below (which
//! declares the modules, [`KINDS`], [`Kind`] and its dispatch), and holds the helpers they share.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::history::metrics::metric_unit;
use crate::history::{NodeHistory, Point, Series, Window};
use crate::model::EvidenceValue;
use crate::rules::Rule;
use crate::tomlread::{Ctx, Fields};
use crate::units::{self, Dimension};

/// What a kind selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A numeric series: `select.metric` must be a known metric.
    Series,
    /// A text attribute compared across nodes: `select.metric` names it.
    Attribute,
    /// The node itself: no metric.
    Node,
}

/// A kind's description for the loader, `patrol rules explain` and the doc checks.
pub struct KindSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub target: Target,
    /// Whether its findings are one-off events (a drop, a reboot) rather than conditions that
    /// stay open until they clear.
    pub event: bool,
    /// Template variables its findings provide besides the common ones.
    pub variables: &'static [&'static str],
    /// The values whose material change makes an open finding worth reporting again.
    pub headline: &'static [&'static str],
    pub parse: fn(&mut ParamReader, &mut Ctx) -> Option<Kind>,
}

/// The cumulative count a kind's findings carry, if any (see [`crate::ledger::count`]).
pub fn cumulative(kind: &str) -> Option<crate::model::Cumulative> {
    (kind == counter_jump::SPEC.name).then(counter_jump::cumulative)
}

/// How an open finding of a kind is rechecked once its rule no longer raises it (see
/// [`crate::rules::resolution::recheck`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecheckBy {
    /// Its subject (a series, a source, the node's sources) is read again at the newest capture;
    /// a reading that is missing keeps the finding open.
    Subject,
    /// Only that every node it names answered: a text attribute compared across nodes has no
    /// series to read again, so its rule alone judges it.
    NodesAnswering,
}

impl KindSpec {
    /// How this kind's findings are rechecked, from what it selects.
    pub fn recheck_by(&self) -> RecheckBy {
        match self.target {
            Target::Attribute => RecheckBy::NodesAnswering,
            Target::Series | Target::Node => RecheckBy::Subject,
        }
    }
}

/// The registry: every kind, once, as `module => Variant`, in the order `patrol rules test`
/// reports coverage. The module is the kind's id with `_` for `-` (`delta_between_snapshots.rs`
/// is `delta-between-snapshots`); its `SPEC` names the id, doc, target and parser. Adding a kind
/// is its `.rs`, its `.md`, its fixtures in `tests/rules/<id>/` and one line here.
macro_rules! registry {
    ($($module:ident => $variant:ident,)*) => {
        $(pub mod $module;)*

        /// Every kind's description, for the loader, `patrol rules explain` and the checks.
        pub const KINDS: &[KindSpec] = &[$($module::SPEC),*];

        /// A kind with its parsed parameters.
        #[derive(Debug, Clone)]
        pub enum Kind {
            $($variant($module::Params),)*
        }

        impl Kind {
            pub fn evaluate(&self, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
                match self {
                    $(Kind::$variant(p) => $module::evaluate(p, rule, ctx, out),)*
                }
            }
        }
    };
}

registry! {
    threshold => Threshold,
    delta_between_snapshots => DeltaBetweenSnapshots,
    growth_rate => GrowthRate,
    drift_across_nodes => DriftAcrossNodes,
    reboot_detected => RebootDetected,
    null_transition => NullTransition,
    unreachable => Unreachable,
    asymmetry => Asymmetry,
    churn => Churn,
    clock_skew => ClockSkew,
    config_missing => ConfigMissing,
    contradiction => Contradiction,
    counter_jump => CounterJump,
    cross_node_ratio => CrossNodeRatio,
    headroom => Headroom,
    idle_resource => IdleResource,
    log_pattern_frequency => LogPatternFrequency,
    missing_key => MissingKey,
    oscillation => Oscillation,
    presence_change => PresenceChange,
    projection => Projection,
    schedule_overdue => ScheduleOverdue,
    score_card => ScoreCard,
    sentinel_value => SentinelValue,
    silence => Silence,
    stall => Stall,
}

pub fn spec(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

/// What a kind sees when it runs.
pub struct EvalContext<'w> {
    pub window: &'w Window,
    pub tz: Tz,
    pub states: &'w crate::rules::states::StateTable,
    /// The definitions behind `states`, for kinds that ask what a state was at an earlier
    /// capture ([`crate::rules::gate_window`]).
    pub state_defs: &'w [crate::rules::states::StateDef],
    pub aliases: &'w crate::rules::states::Aliases,
}

impl EvalContext<'_> {
    /// A capture time for prose, in the fleet's time zone: "21:53" or "Feb 18 21:53".
    pub fn time(&self, unix: i64) -> String {
        let Some(t) = Utc.timestamp_opt(unix, 0).single() else {
            return unix.to_string();
        };
        let local = t.with_timezone(&self.tz);
        let now = self
            .window
            .latest_at()
            .map(|n| n.with_timezone(&self.tz).date_naive());
        if Some(local.date_naive()) == now {
            local.format("%H:%M").to_string()
        } else {
            local.format("%b %-d %H:%M").to_string()
        }
    }
}

/// The entity of [`Candidate::undecided_node`].
pub const WHOLE_NODE: &str = "*";

/// A finding before its templates are rendered.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub nodes: Vec<String>,
    pub entity: String,
    pub metric: String,
    pub observed_at: DateTime<Utc>,
    pub evidence: String,
    pub event: bool,
    /// Extra key material for events, so two reboots are two findings.
    pub event_id: Option<String>,
    /// See [`crate::model::Finding::scope`].
    pub scope: Option<String>,
    /// The rule could not decide for this subject (too few readings, a peer missing): an open
    /// finding about it stays open rather than resolving.
    pub unchecked: bool,
    /// The condition still holds, with nothing new to report (a setting still missing while the
    /// usage that made it worth telling fell): an open finding about it stays open, and a
    /// finding that is not open is not raised.
    pub holds: bool,
    /// What it is about reads the same in any derived state (a reading present or null, a
    /// source answering, a setting, a version): its finding records no context, so it may
    /// resolve whatever the line is doing.
    pub any_state: bool,
    pub values: BTreeMap<String, EvidenceValue>,
}

impl Candidate {
    pub fn new(node: &NodeHistory, entity: &str, metric: &str, at: i64) -> Candidate {
        Candidate {
            nodes: vec![node.node.clone()],
            entity: entity.to_string(),
            metric: metric.to_string(),
            observed_at: Utc.timestamp_opt(at, 0).single().unwrap_or_default(),
            evidence: String::new(),
            event: false,
            event_id: None,
            scope: None,
            unchecked: false,
            holds: false,
            any_state: false,
            values: BTreeMap::new(),
        }
    }

    /// A subject the rule could not decide this time (see [`Candidate::unchecked`]).
    pub fn undecided(node: &NodeHistory, entity: &str, metric: &str, at: i64) -> Candidate {
        let mut c = Candidate::new(node, entity, metric, at);
        c.unchecked = true;
        c
    }

    /// The rule cannot judge anything about this node this time (its window reaches back past a
    /// capture gap, and the subjects it raised may no longer be in it): every open finding of
    /// the rule about the node stays open.
    pub fn undecided_node(node: &NodeHistory, at: i64) -> Candidate {
        Candidate::undecided(node, WHOLE_NODE, "", at)
    }

    /// A subject whose condition still holds (see [`Candidate::holds`]).
    pub fn holding(node: &NodeHistory, entity: &str, metric: &str, at: i64) -> Candidate {
        let mut c = Candidate::new(node, entity, metric, at);
        c.holds = true;
        c
    }

    /// [`Candidate::undecided`] at the newest point of a series.
    pub fn undecided_at_end(
        node: &NodeHistory,
        entity: &str,
        metric: &str,
        points: &[Point],
    ) -> Candidate {
        let at = points.last().map(|p| p.at).unwrap_or_default();
        Candidate::undecided(node, entity, metric, at)
    }

    /// Marks it as judged the same in any derived state (see [`Candidate::any_state`]).
    pub fn in_any_state(mut self) -> Candidate {
        self.any_state = true;
        self
    }

    pub fn value(&mut self, name: &str, value: Option<f64>, text: impl Into<String>) {
        self.values.insert(
            name.to_string(),
            EvidenceValue {
                value,
                text: text.into(),
            },
        );
    }
}

/// The points of a series when its newest point is from the node's newest capture; `None` when
/// the latest capture had no reading for it (source failed, entity gone): could not check.
pub fn fresh<'s>(node: &NodeHistory, series: &'s Series) -> Option<&'s [Point]> {
    let latest = node.latest_at()?;
    (series.last()?.at == latest).then_some(series.points.as_slice())
}

/// Whether the node's unbroken run of captures ([`NodeHistory::contiguous_since`]) spans at
/// least `secs`. A kind whose verdict is about a duration ("idle for 12 h", a trend over 3 h)
/// reports a subject as undecided when it does not: after a capture gap, the absence of the
/// condition over a short stretch says nothing about the duration it needs.
pub fn covers(node: &NodeHistory, secs: f64) -> bool {
    match (node.contiguous_since(), node.latest_at()) {
        (Some(from), Some(to)) => (to - from) as f64 >= secs,
        _ => false,
    }
}

/// The rule's selected series that are [`fresh`], as (node, entity, points).
pub fn fresh_series<'w>(
    rule: &Rule,
    window: &'w Window,
) -> Vec<(&'w NodeHistory, &'w str, &'w [Point])> {
    rule.select
        .series(window)
        .into_iter()
        .filter_map(|(node, entity, series)| fresh(node, series).map(|p| (node, entity, p)))
        .collect()
}

/// The readings of the entity's current run within the last `window_s`: since the node's last
/// reboot and the container's last restart, because after either the value starts again from
/// its base and must not be joined to what came before. Nulls are left out.
pub fn current_run(
    node: &NodeHistory,
    entity: &str,
    points: &[Point],
    window_s: f64,
) -> Vec<(i64, f64)> {
    let Some(last_at) = points.last().map(|pt| pt.at) else {
        return Vec::new();
    };
    let mut start = (last_at as f64 - window_s) as i64;
    start = start.max(node.segment_start());
    if let Some(restarts) = node.series(entity, "restart_count") {
        let pts = restarts.since(start);
        for pair in pts.windows(2) {
            if let (Some(a), Some(b)) = (pair[0].value, pair[1].value)
                && b != a
            {
                start = start.max(pair[1].at);
            }
        }
    }
    points
        .iter()
        .filter(|pt| pt.at >= start)
        .filter_map(|pt| pt.value.map(|v| (pt.at, v)))
        .collect()
}

/// Nodes grouped for peer comparison: by role (nodes without one form the group "fleet"), or
/// all selected nodes together when `within` is "fleet".
pub fn peer_groups<'w>(
    rule: &Rule,
    window: &'w Window,
    within_fleet: bool,
) -> BTreeMap<String, Vec<&'w NodeHistory>> {
    let mut groups: BTreeMap<String, Vec<&NodeHistory>> = BTreeMap::new();
    for node in window.nodes().filter(|n| rule.select.node_matches(n)) {
        let group = if within_fleet {
            "fleet".to_string()
        } else {
            node.role.clone().unwrap_or_else(|| "fleet".to_string())
        };
        groups.entry(group).or_default().push(node);
    }
    groups
}

/// A list of strings parameter (a single string is a list of one).
pub fn string_list(p: &mut ParamReader, ctx: &mut Ctx, key: &str) -> Vec<String> {
    p.fields
        .strings(ctx, key)
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.into_inner())
        .collect()
}

/// A plain number parameter.
pub fn number(p: &mut ParamReader, ctx: &mut Ctx, key: &str) -> Option<f64> {
    p.fields.number(ctx, key).map(|n| n.into_inner())
}

/// Human list: "a, b and c".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Parameters of a rule, read with the units of its metric.
pub struct ParamReader<'t, 'i> {
    pub fields: Fields<'t, 'i>,
    pub dimension: Dimension,
    pub suffix: &'static str,
    /// The longest `window` (or `*_window`) the rule asked for, in seconds: the history a run
    /// keeps is at least this long, whatever the fleet's configured window.
    pub lookback_s: f64,
}

impl<'t, 'i> ParamReader<'t, 'i> {
    pub fn new(fields: Fields<'t, 'i>, metric: &str) -> Self {
        let (dimension, suffix) = metric_unit(metric);
        ParamReader {
            fields,
            dimension,
            suffix,
            lookback_s: 0.0,
        }
    }

    fn parse_text(
        &mut self,
        ctx: &mut Ctx,
        key: &str,
        parse: impl Fn(&str) -> Result<f64, String>,
    ) -> Option<f64> {
        let v = self.fields.value(key)?;
        let text = match v.get_ref() {
            toml::de::DeValue::String(s) => s.to_string(),
            toml::de::DeValue::Integer(i) => i.as_str().to_string(),
            toml::de::DeValue::Float(f) => f.as_str().to_string(),
            other => {
                ctx.report(
                    v.span(),
                    format!(
                        "{}: `{key}` must be a number or a string, not {}",
                        self.fields.what,
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        match parse(&text) {
            Ok(x) if !x.is_finite() => {
                ctx.report(
                    v.span(),
                    format!("{}: `{key}` must be a finite number", self.fields.what),
                );
                None
            }
            Ok(x) => Some(x),
            Err(e) => {
                ctx.report(v.span(), format!("{}: `{key}`: {e}", self.fields.what));
                None
            }
        }
    }

    /// A value in the metric's unit ("5GB" for a size, 80 for a percentage).
    pub fn quantity(&mut self, ctx: &mut Ctx, key: &str) -> Option<f64> {
        let dim = self.dimension;
        self.parse_text(ctx, key, |t| units::parse(t, dim))
    }

    pub fn duration(&mut self, ctx: &mut Ctx, key: &str) -> Option<f64> {
        // A window of nothing holds no reading: the rule could never speak.
        let is_window = key == "window" || key.ends_with("_window");
        let secs = self.parse_text(ctx, key, |t| match units::parse_duration_secs(t) {
            Ok(s) if s < 0.0 => Err("must not be negative".into()),
            Ok(s) if s == 0.0 && is_window => Err("must be longer than 0".into()),
            other => other,
        });
        if is_window && let Some(s) = secs {
            self.lookback_s = self.lookback_s.max(s);
        }
        secs
    }

    /// A rate in the metric's unit per time ("+2MB/h"), as units per second.
    pub fn rate(&mut self, ctx: &mut Ctx, key: &str) -> Option<f64> {
        let dim = self.dimension;
        self.parse_text(ctx, key, |t| units::parse_rate_per_sec(t, dim))
    }

    pub fn required<T>(&self, ctx: &mut Ctx, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.fields.has(key) {
            ctx.report(
                self.fields.span.clone(),
                format!("{} needs parameter `{key}`", self.fields.what),
            );
        }
        value
    }

    /// One of a fixed set of words.
    pub fn choice(
        &mut self,
        ctx: &mut Ctx,
        key: &str,
        options: &[&str],
        default: &'static str,
    ) -> String {
        match self.fields.string(ctx, key, false) {
            None => default.to_string(),
            Some(s) if options.contains(&s.get_ref().as_str()) => s.into_inner(),
            Some(s) => {
                ctx.report(
                    s.span(),
                    format!(
                        "{}: `{key}` must be one of {}{}",
                        self.fields.what,
                        options.join(", "),
                        crate::error::did_you_mean(s.get_ref(), options)
                    ),
                );
                default.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_doc_has_the_headings_in_order() {
        let headings = [
            "## What it does",
            "## Why it matters",
            "## Parameters",
            "## Example",
            "## Known limitations",
        ];
        for kind in KINDS {
            let mut at = 0;
            for h in headings {
                let found = kind.doc[at..].find(h);
                assert!(
                    found.is_some(),
                    "{}.md lacks `{h}` (or it is out of order)",
                    kind.name
                );
                at += found.unwrap_or(0) + h.len();
            }
        }
    }
}
