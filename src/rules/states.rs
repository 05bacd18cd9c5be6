//! Derived states and name aliases: the fleet knowledge rules share.
//!
//! A *state* (e.g. `line` = production or idle) is computed for each node from its newest
//! readings, so a rule can be gated on it: an idle-only rule does not speak during production,
//! and a production-only error cannot "resolve" while the line is idle (it is "could not check"
//! instead). An *alias* says that two container names are the same component on different
//! nodes (`dev-visionking-inference` is `visionking-inference`), for rules that compare peers.
//! Both are declared in rule files next to the rules that use them (`[[state]]`, `[[alias]]`).

use std::collections::BTreeMap;

use crate::history::{NodeHistory, Window};
use crate::rules::select::glob_match;
use crate::tomlread::{Ctx, Fields};
use crate::units;

/// One reading compared with a limit: `{ entity = "gpu:*", metric = "util_pct", above = 5 }`.
/// With `sum = true` the newest readings of every matching entity are added up first (the
/// node's containers together: `{ entity = "container:*", metric = "cpu_cores", sum = true,
/// above = 2 }`), so many small consumers count as much as one big one.
#[derive(Debug, Clone)]
pub struct Condition {
    pub entity: String,
    pub metric: String,
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub sum: bool,
}

impl Condition {
    fn passes(&self, v: f64) -> bool {
        self.above.is_none_or(|a| v > a) && self.below.is_none_or(|b| v < b)
    }

    /// The matching entities' readings at `at` added up; `None` when none was read then.
    fn total(&self, node: &NodeHistory, at: i64) -> Option<f64> {
        let fresh: Vec<f64> = node
            .series_of(&self.metric)
            .into_iter()
            .filter(|(entity, _)| glob_match(&self.entity, entity))
            .filter_map(|(_, series)| reading_at(series, at))
            .collect();
        (!fresh.is_empty()).then(|| fresh.iter().sum())
    }

    /// `Some(true)` when a matching entity's newest reading passes, `Some(false)` when readings
    /// exist and none passes, `None` when there is no fresh reading to judge by.
    pub fn holds(&self, node: &NodeHistory) -> Option<bool> {
        self.holds_at(node, node.latest_at()?)
    }

    /// [`Condition::holds`] on the readings of the node's capture taken at `at`.
    pub fn holds_at(&self, node: &NodeHistory, at: i64) -> Option<bool> {
        if self.sum {
            return self.total(node, at).map(|v| self.passes(v));
        }
        let mut seen = false;
        for (entity, series) in node.series_of(&self.metric) {
            if !glob_match(&self.entity, entity) {
                continue;
            }
            let Some(v) = reading_at(series, at) else {
                continue;
            };
            seen = true;
            if self.passes(v) {
                return Some(true);
            }
        }
        seen.then_some(false)
    }

    /// The first matching entity whose newest reading passes, with that reading (with `sum`,
    /// the entities' glob and their total).
    pub fn passing(&self, node: &NodeHistory) -> Option<(String, f64)> {
        let latest = node.latest_at()?;
        if self.sum {
            let v = self.total(node, latest).filter(|&v| self.passes(v))?;
            return Some((self.entity.clone(), v));
        }
        node.series_of(&self.metric)
            .into_iter()
            .filter(|(entity, _)| glob_match(&self.entity, entity))
            .find_map(|(entity, series)| {
                let v = series.last().filter(|p| p.at == latest)?.value?;
                let pass = self.above.is_none_or(|a| v > a) && self.below.is_none_or(|b| v < b);
                pass.then(|| (entity.to_string(), v))
            })
    }

    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {}{}",
            self.entity,
            self.metric,
            if self.sum { " (sum)" } else { "" }
        );
        if let Some(a) = self.above {
            s.push_str(&format!(" > {}", units::fmt_number(a, 3)));
        }
        if let Some(b) = self.below {
            s.push_str(&format!(" < {}", units::fmt_number(b, 3)));
        }
        s
    }
}

/// The reading a series has from the capture taken at `at`, if any.
fn reading_at(series: &crate::history::Series, at: i64) -> Option<f64> {
    let points = &series.points;
    let i = points.partition_point(|p| p.at < at);
    points.get(i).filter(|p| p.at == at)?.value
}

#[derive(Debug, Clone)]
pub struct StateCase {
    pub value: String,
    /// The case holds when any condition holds.
    pub any: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub struct StateDef {
    pub id: String,
    pub description: String,
    /// A fleet-wide state has one value for every node: the first case that holds on any node.
    pub fleet: bool,
    pub cases: Vec<StateCase>,
    /// The value when no case holds but there were readings to judge by.
    pub otherwise: String,
    /// The value that means the node has no work (`rest = "idle"`), for rules whose condition
    /// work only makes likelier (`worse_under_work`); a state without it is about something
    /// else than work, and such a rule is judged in it like any other.
    pub rest: Option<String>,
}

impl StateDef {
    /// A fleet-wide state from its nodes' values: the first case (in order) that holds on any
    /// node, else any value a node has.
    pub fn fleet_value(&self, values: Vec<Option<String>>) -> Option<String> {
        self.cases
            .iter()
            .find(|c| {
                values
                    .iter()
                    .any(|v| v.as_deref() == Some(c.value.as_str()))
            })
            .map(|c| c.value.clone())
            .or_else(|| values.into_iter().flatten().next())
    }

    pub fn values(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.cases.iter().map(|c| c.value.as_str()).collect();
        v.push(&self.otherwise);
        v
    }

    /// The node's state at its newest capture; `None` when nothing could be read.
    pub fn of(&self, node: &NodeHistory) -> Option<String> {
        self.of_at(node, node.latest_at()?)
    }

    /// The node's state at its capture taken at `at`; `None` when nothing could be read.
    pub fn of_at(&self, node: &NodeHistory, at: i64) -> Option<String> {
        let mut judged = false;
        for case in &self.cases {
            for cond in &case.any {
                match cond.holds_at(node, at) {
                    Some(true) => return Some(case.value.clone()),
                    Some(false) => judged = true,
                    None => {}
                }
            }
        }
        judged.then(|| self.otherwise.clone())
    }
}

/// The states of every node at the window's newest captures: node → state id → value.
#[derive(Debug, Default)]
pub struct StateTable {
    pub by_node: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// state → its value at rest, for the states that declare one (`rest`).
    pub rest: BTreeMap<String, String>,
}

impl StateTable {
    pub fn compute(defs: &[StateDef], window: &Window) -> StateTable {
        let mut by_node = BTreeMap::new();
        if defs.is_empty() {
            return StateTable::default();
        }
        // Fleet-wide states: the first case (in order) that holds on any node.
        let fleet: BTreeMap<&str, Option<String>> = defs
            .iter()
            .filter(|d| d.fleet)
            .map(|d| {
                let values: Vec<Option<String>> = window.nodes().map(|n| d.of(n)).collect();
                (d.id.as_str(), d.fleet_value(values))
            })
            .collect();
        for node in window.nodes() {
            let states = defs
                .iter()
                .map(|d| {
                    let value = match fleet.get(d.id.as_str()) {
                        Some(v) => v.clone(),
                        None => d.of(node),
                    };
                    (d.id.clone(), value)
                })
                .collect();
            by_node.insert(node.node.clone(), states);
        }
        let rest = defs
            .iter()
            .filter_map(|d| Some((d.id.clone(), d.rest.clone()?)))
            .collect();
        StateTable { by_node, rest }
    }

    pub fn get(&self, node: &str, state: &str) -> Option<&str> {
        self.by_node.get(node)?.get(state)?.as_deref()
    }
}

/// `when = { line = "idle" }` on a rule: every named state must have the given value.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub require: Vec<(String, String)>,
}

/// Whether a gate lets a rule speak about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateCheck {
    Open,
    /// The state has another value (`Closed("production")`) or could not be read (`None`).
    Closed(Option<String>),
}

impl Gate {
    pub fn check(&self, states: &StateTable, node: &str) -> GateCheck {
        for (state, want) in &self.require {
            match states.get(node, state) {
                Some(v) if v == want => {}
                other => return GateCheck::Closed(other.map(str::to_string)),
            }
        }
        GateCheck::Open
    }

    pub fn is_empty(&self) -> bool {
        self.require.is_empty()
    }
}

/// Component names that mean the same thing on different nodes.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    /// other name → canonical name
    map: BTreeMap<String, String>,
}

impl Aliases {
    pub fn insert(&mut self, canonical: &str, other: &str) {
        self.map.insert(other.to_string(), canonical.to_string());
    }

    /// The canonical names with at least one other name.
    pub fn canonical_names(&self) -> std::collections::BTreeSet<String> {
        self.map.values().cloned().collect()
    }

    /// Forgets every other name of `canonical`: an overlay's alias replaces the earlier one.
    pub fn remove_canonical(&mut self, canonical: &str) {
        self.map.retain(|_, c| c != canonical);
    }

    pub fn merge(&mut self, other: Aliases) {
        self.map.extend(other.map);
    }

    /// The canonical form of an image reference (`pm-sis-surface:c005` → `visionking-plc-monitor:c005`).
    pub fn canonical_image(&self, image_ref: &str) -> String {
        match image_ref.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                format!(
                    "{}:{tag}",
                    self.map.get(name).map(String::as_str).unwrap_or(name)
                )
            }
            _ => self
                .map
                .get(image_ref)
                .cloned()
                .unwrap_or_else(|| image_ref.to_string()),
        }
    }

    /// The canonical name of a container name, or of an entity (`container:<name>`).
    pub fn canonical(&self, name: &str) -> String {
        if let Some((head, rest)) = name.split_once(':') {
            return format!("{head}:{}", self.canonical(rest));
        }
        self.map
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }
}

fn parse_condition(mut f: Fields, ctx: &mut Ctx) -> Option<Condition> {
    let entity = f.string(ctx, "entity", true);
    let metric = f.string(ctx, "metric", true);
    if let Some(m) = &metric
        && !crate::history::metrics::KNOWN_METRICS.contains(&m.get_ref().as_str())
    {
        ctx.report(
            m.span(),
            format!(
                "{}: unknown metric `{}`{}",
                f.what,
                m.get_ref(),
                crate::error::did_you_mean(m.get_ref(), crate::history::metrics::KNOWN_METRICS)
            ),
        );
    }
    let dim = metric
        .as_ref()
        .map(|m| crate::history::metrics::metric_unit(m.get_ref()).0)
        .unwrap_or(units::Dimension::Plain);
    let limit = |f: &mut Fields, ctx: &mut Ctx, key: &str| -> Option<f64> {
        let v = f.value(key)?;
        let text = match v.get_ref() {
            toml::de::DeValue::String(s) => s.to_string(),
            toml::de::DeValue::Integer(i) => i.as_str().to_string(),
            toml::de::DeValue::Float(x) => x.as_str().to_string(),
            _ => {
                ctx.report(v.span(), format!("{}: `{key}` must be a number", f.what));
                return None;
            }
        };
        match units::parse(&text, dim) {
            Ok(x) => Some(x),
            Err(e) => {
                ctx.report(v.span(), format!("{}: `{key}`: {e}", f.what));
                None
            }
        }
    };
    let above = limit(&mut f, ctx, "above");
    let below = limit(&mut f, ctx, "below");
    let sum = f.boolean(ctx, "sum").unwrap_or(false);
    if above.is_none() && below.is_none() {
        ctx.report(
            f.span.clone(),
            format!("{} needs `above` or `below`", f.what),
        );
    }
    f.finish(ctx);
    Some(Condition {
        entity: entity?.into_inner(),
        metric: metric?.into_inner(),
        above,
        below,
        sum,
    })
}

/// A list of `{ entity, metric, above|below }` tables under `key`.
pub fn parse_conditions(f: &mut Fields, ctx: &mut Ctx, key: &str) -> Vec<Condition> {
    let what = format!("{} `{key}`", f.what);
    f.tables(ctx, key)
        .into_iter()
        .filter_map(|(t, span)| parse_condition(Fields::new(t, span, what.clone()), ctx))
        .collect()
}

/// Reads one `[[state]]` table. With `base` (an overlay's state of an earlier id) every key
/// but `id` may be left out and is then the earlier state's: `[[state.case]]`s given replace
/// the cases, so a fleet changes a threshold without restating the rest.
pub fn parse_state(mut f: Fields, ctx: &mut Ctx, base: Option<&StateDef>) -> Option<StateDef> {
    let id = f.string(ctx, "id", true);
    if let Some(id) = &id {
        f.what = format!("state `{}`", id.get_ref());
    }
    let required = base.is_none();
    let description = f
        .string(ctx, "description", required)
        .map(|d| d.into_inner())
        .or_else(|| base.map(|b| b.description.clone()));
    let otherwise = f
        .string(ctx, "otherwise", required)
        .map(|o| o.into_inner())
        .or_else(|| base.map(|b| b.otherwise.clone()));
    let rest = f
        .string(ctx, "rest", false)
        .map(|r| (r.get_ref().to_string(), r.span()))
        .map(|(r, span)| (Some(r), Some(span)))
        .unwrap_or_else(|| (base.and_then(|b| b.rest.clone()), None));
    let fleet = match f.string(ctx, "scope", false) {
        None => base.is_some_and(|b| b.fleet),
        Some(s) if s.get_ref() == "node" => false,
        Some(s) if s.get_ref() == "fleet" => true,
        Some(s) => {
            ctx.report(
                s.span(),
                format!("{}: `scope` must be node or fleet", f.what),
            );
            false
        }
    };
    let mut cases = Vec::new();
    for (t, span) in f.tables(ctx, "case") {
        let mut c = Fields::new(t, span, format!("{} case", f.what));
        let value = c.string(ctx, "value", true);
        let any = parse_conditions(&mut c, ctx, "any");
        if any.is_empty() {
            ctx.report(
                c.span.clone(),
                format!("{} needs at least one condition in `any`", c.what),
            );
        }
        c.finish(ctx);
        if let Some(value) = value {
            cases.push(StateCase {
                value: value.into_inner(),
                any,
            });
        }
    }
    if cases.is_empty() {
        match base {
            Some(b) => cases = b.cases.clone(),
            None => ctx.report(
                f.span.clone(),
                format!("{} needs at least one [[state.case]]", f.what),
            ),
        }
    }
    let what = f.what.clone();
    f.finish(ctx);
    let otherwise = otherwise?;
    if let (Some(r), Some(span)) = &rest
        && *r != otherwise
        && !cases.iter().any(|c| &c.value == r)
    {
        ctx.report(
            span.clone(),
            format!(
                "{}: `rest` must be one of its values ({}), not `{r}`",
                what,
                std::iter::once(otherwise.as_str())
                    .chain(cases.iter().map(|c| c.value.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    Some(StateDef {
        id: id?.into_inner(),
        description: description?,
        fleet,
        cases,
        otherwise,
        rest: rest.0,
    })
}

/// Reads one `[[alias]]` table: `{ name = "visionking-inference", also = ["dev-visionking-inference"] }`.
pub fn parse_alias(mut f: Fields, ctx: &mut Ctx, into: &mut Aliases) {
    let name = f.string(ctx, "name", true);
    let also = f.strings(ctx, "also").unwrap_or_default();
    if also.is_empty() {
        ctx.report(
            f.span.clone(),
            format!("{} needs `also`: the other names", f.what),
        );
    }
    f.finish(ctx);
    if let Some(name) = name {
        for other in also {
            into.insert(name.get_ref(), other.get_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_names_and_entities() {
        let mut a = Aliases::default();
        a.insert("visionking-plc-monitor", "pm-sis-surface");
        assert_eq!(a.canonical("pm-sis-surface"), "visionking-plc-monitor");
        assert_eq!(
            a.canonical("container:pm-sis-surface"),
            "container:visionking-plc-monitor"
        );
        assert_eq!(a.canonical("keydb"), "keydb");
    }

    /// The built-in `line` state of nodes each captured once, given as JSON snapshot fields:
    /// node → value.
    fn builtin_line(nodes: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        let lib = crate::rules::Library::load_all(&[]).unwrap();
        let mut window = Window::new(chrono::Duration::hours(24));
        let at = chrono::DateTime::parse_from_rfc3339("2026-02-18T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        for (name, fields) in nodes {
            let mut snap =
                serde_json::to_value(crate::model::Snapshot::new("web", name, at)).unwrap();
            let extra: serde_json::Value = serde_json::from_str(fields).unwrap();
            for (k, v) in extra.as_object().unwrap() {
                snap[k] = v.clone();
            }
            window.push(serde_json::from_value(snap).unwrap());
        }
        let table = StateTable::compute(&lib.states, &window);
        table
            .by_node
            .iter()
            .map(|(n, states)| (n.clone(), states.get("line").cloned().flatten()))
            .collect()
    }

    #[test]
    fn a_fleet_without_gpus_or_rabbitmq_gets_a_known_line_state() {
        let c = |name: &str, cpu: f64| {
            format!(
                r#"{{"name": "{name}", "image": "{name}", "state": "running", "cpu_cores": {cpu}}}"#
            )
        };
        let busy = format!(
            r#"{{"containers": [{}, {}]}}"#,
            c("api", 1.4),
            c("worker", 0.9)
        );
        let quiet = format!(r#"{{"containers": [{}]}}"#, c("api", 0.1));
        let jobs =
            r#"{"work_queues": [{"name": "inspection", "pending": 12, "processing_workers": 0}]}"#;
        let line = builtin_line(&[
            ("busy-web", &busy),
            ("quiet-web", &quiet),
            ("jobs", jobs),
            ("bare", "{}"),
        ]);
        // Two containers of 1.4 and 0.9 cores are busy together, though neither is alone.
        assert_eq!(line["busy-web"].as_deref(), Some("production"));
        assert_eq!(line["quiet-web"].as_deref(), Some("idle"));
        assert_eq!(line["jobs"].as_deref(), Some("production"));
        // Nothing that says work or rest: still unknown, not guessed.
        assert_eq!(line["bare"], None);
    }

    #[test]
    fn a_summed_condition_says_so() {
        let c = Condition {
            entity: "container:*".into(),
            metric: "cpu_cores".into(),
            above: Some(2.0),
            below: None,
            sum: true,
        };
        assert_eq!(c.describe(), "container:* cpu_cores (sum) > 2");
    }
}
