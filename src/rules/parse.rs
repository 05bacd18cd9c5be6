//! Reading one `[[rule]]` table of a rule file: its keys, its gate (`when`) and its selector,
//! every mistake reported with its line and column.

use super::*;

pub(super) fn parse_rule(
    mut f: Fields,
    ctx: &mut Ctx,
    path: &Path,
    env: &minijinja::Environment<'static>,
    states: &[StateDef],
) -> Option<Rule> {
    let line = ctx.line_col(f.span.start).0;
    let id = f.string(ctx, "id", true);
    if let Some(id) = &id {
        f.what = format!("rule `{}`", id.get_ref());
        if !is_kebab(id.get_ref()) {
            ctx.report(
                id.span(),
                format!(
                    "rule id `{}` must be kebab-case (a-z, 0-9, -)",
                    id.get_ref()
                ),
            );
        }
    }
    let kind_name = f.string(ctx, "kind", true);
    let spec: Option<&'static KindSpec> = kind_name.as_ref().and_then(|k| {
        let found = kinds::spec(k.get_ref());
        if found.is_none() {
            let names: Vec<&str> = kinds::KINDS.iter().map(|k| k.name).collect();
            ctx.report(
                k.span(),
                format!(
                    "{}: unknown kind `{}`{} (kinds: {})",
                    f.what,
                    k.get_ref(),
                    did_you_mean(k.get_ref(), &names),
                    names.join(", ")
                ),
            );
        }
        found
    });
    let severity = f.string(ctx, "severity", true).and_then(|s| {
        let parsed = Severity::parse(s.get_ref());
        if parsed.is_none() {
            ctx.report(
                s.span(),
                format!(
                    "{}: severity `{}` must be warning, info or suggestion",
                    f.what,
                    s.get_ref()
                ),
            );
        }
        parsed
    });
    let description = f.string(ctx, "description", true);
    let select = parse_select(&mut f, ctx, spec);
    let kind = match (spec, &select) {
        (Some(spec), Some(select)) => {
            let what = format!("{} params", f.what);
            let params = match f.table(ctx, "params", &what) {
                Some(p) => p,
                None => {
                    // An empty table stands in when a kind needs no parameters.
                    static EMPTY: std::sync::OnceLock<toml::de::DeTable<'static>> =
                        std::sync::OnceLock::new();
                    let empty = EMPTY.get_or_init(toml::de::DeTable::new);
                    Fields::new(empty, f.span.clone(), what)
                }
            };
            let mut reader = ParamReader::new(params, &select.metric);
            let kind = (spec.parse)(&mut reader, ctx);
            reader.fields.finish(ctx);
            kind.map(|k| (k, reader.lookback_s))
        }
        _ => {
            f.value("params");
            None
        }
    };
    let mut check_template = |key: &str, f: &mut Fields| -> Option<String> {
        let t = f.string(ctx, key, true)?;
        if let Some(spec) = spec
            && let Err(e) = template::check(env, t.get_ref(), spec.variables)
        {
            ctx.report(t.span(), format!("{}: `{key}` template: {e}", f.what));
        }
        Some(t.into_inner())
    };
    let title = check_template("title", &mut f);
    let recommendation = check_template("recommendation", &mut f);
    let advice = advice::parse(&mut f, ctx, |t| match spec {
        Some(spec) => template::check(env, t, spec.variables),
        None => Ok(()),
    });
    let when = parse_gate(&mut f, ctx, states);
    let lifecycle = parse_lifecycle(&mut f, ctx);
    let verify = f.string(ctx, "verify", false).map(|v| v.into_inner());
    let (across_nodes, family, folds_into) = parse_grouping(&mut f, ctx);
    f.finish(ctx);
    let (kind, lookback_s) = kind?;
    Some(Rule {
        id: id?.into_inner(),
        kind_name: spec?.name,
        kind,
        lookback_s,
        event: spec?.event,
        severity: severity?,
        description: description?.into_inner(),
        select: select?,
        title: title?,
        recommendation: recommendation?,
        advice,
        when,
        escalate_after: lifecycle.escalate_after,
        resolve_after: lifecycle.resolve_after,
        blinds: lifecycle.blinds,
        worse_under_work: lifecycle.worse_under_work,
        impact: lifecycle.impact,
        verify,
        across_nodes,
        family,
        folds_into,
        overrides: None,
        tuned: false,
        file: path.to_path_buf(),
        line,
    })
}

/// How the rule's findings group with others: `across_nodes`, `family`, `folds_into`.
/// The keys that travel on each finding to the ledger ([`crate::model::Lifecycle`]).
struct LifecycleKeys {
    escalate_after: Option<u32>,
    resolve_after: Option<u32>,
    blinds: bool,
    worse_under_work: bool,
    impact: Option<crate::model::Impact>,
}

fn parse_lifecycle(f: &mut Fields, ctx: &mut Ctx) -> LifecycleKeys {
    LifecycleKeys {
        escalate_after: f.count(ctx, "escalate_after").map(|n| n.max(1) as u32),
        resolve_after: f.count(ctx, "resolve_after").map(|n| n.max(1) as u32),
        blinds: f.boolean(ctx, "blinds").unwrap_or(false),
        worse_under_work: f.boolean(ctx, "worse_under_work").unwrap_or(false),
        impact: parse_impact(f, ctx),
    }
}

/// `impact = "data-loss"`: one of [`Impact::ALL`]'s names.
fn parse_impact(f: &mut Fields, ctx: &mut Ctx) -> Option<crate::model::Impact> {
    use crate::model::Impact;
    let v = f.string(ctx, "impact", false)?;
    if let Some(i) = Impact::parse(v.get_ref()) {
        return Some(i);
    }
    let names: Vec<&str> = Impact::ALL.iter().map(|i| i.name()).collect();
    ctx.report(
        v.span(),
        format!(
            "{}: `impact` must be one of {}, not `{}`{}",
            f.what,
            names.join(", "),
            v.get_ref(),
            crate::error::did_you_mean(v.get_ref(), &names)
        ),
    );
    None
}

fn parse_grouping(f: &mut Fields, ctx: &mut Ctx) -> (AcrossNodes, Option<String>, Vec<String>) {
    let across_nodes = f
        .string(ctx, "across_nodes", false)
        .and_then(|v| match AcrossNodes::parse(v.get_ref()) {
            Some(a) => Some(a),
            None => {
                ctx.report(
                    v.span(),
                    format!(
                        "{}: `across_nodes` must be {}, not `{}`",
                        f.what,
                        AcrossNodes::CHOICES,
                        v.get_ref()
                    ),
                );
                None
            }
        })
        .unwrap_or_default();
    let family = f.string(ctx, "family", false).map(|v| v.into_inner());
    let folds_into = f
        .strings(ctx, "folds_into")
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.into_inner())
        .collect();
    (across_nodes, family, folds_into)
}

fn parse_gate(f: &mut Fields, ctx: &mut Ctx, states: &[StateDef]) -> Gate {
    let what = format!("{} when", f.what);
    let Some(w) = f.table(ctx, "when", &what) else {
        return Gate::default();
    };
    let mut require = Vec::new();
    let mut w = w;
    for key in w.keys() {
        let Some(value) = w.string(ctx, &key, true) else {
            continue;
        };
        match states.iter().find(|s| s.id == key) {
            None => {
                let ids: Vec<&str> = states.iter().map(|s| s.id.as_str()).collect();
                ctx.report(
                    value.span(),
                    format!(
                        "{what}: no state `{key}` is declared{} (declare it with [[state]])",
                        did_you_mean(&key, &ids)
                    ),
                );
            }
            Some(state) if !state.values().contains(&value.get_ref().as_str()) => {
                ctx.report(
                    value.span(),
                    format!(
                        "{what}: state `{key}` is never `{}` (values: {})",
                        value.get_ref(),
                        state.values().join(", ")
                    ),
                );
            }
            Some(_) => require.push((key, value.into_inner())),
        }
    }
    w.finish(ctx);
    Gate { require }
}

fn parse_select(f: &mut Fields, ctx: &mut Ctx, spec: Option<&KindSpec>) -> Option<Selector> {
    let what = format!("{} select", f.what);
    let Some(mut s) = f.table(ctx, "select", &what) else {
        if spec.is_some_and(|k| k.target == Target::Node) {
            return Some(Selector::default());
        }
        ctx.report(
            f.span.clone(),
            format!("{} is missing `select` (keys: {RULE_KEYS_DOC})", f.what),
        );
        return None;
    };
    let strings = |s: &mut Fields, ctx: &mut Ctx, key: &str| -> Vec<String> {
        s.strings(ctx, key)
            .unwrap_or_default()
            .into_iter()
            .map(|x| x.into_inner())
            .collect()
    };
    let entities = strings(&mut s, ctx, "entity");
    let exclude = strings(&mut s, ctx, "exclude");
    let nodes = strings(&mut s, ctx, "nodes");
    let roles = strings(&mut s, ctx, "roles");
    let target = spec.map(|k| k.target);
    let metric_key = if target == Some(Target::Attribute) {
        "attribute"
    } else {
        "metric"
    };
    let metric = match target {
        Some(Target::Node) | None => {
            s.value("metric");
            s.value("attribute");
            String::new()
        }
        Some(t) => match s.string(ctx, metric_key, true) {
            Some(m) => {
                let known = if t == Target::Series {
                    KNOWN_METRICS
                } else {
                    KNOWN_ATTRIBUTES
                };
                if !known.contains(&m.get_ref().as_str()) {
                    ctx.report(
                        m.span(),
                        format!(
                            "{what}: unknown {metric_key} `{}`{}",
                            m.get_ref(),
                            did_you_mean(m.get_ref(), known)
                        ),
                    );
                }
                m.into_inner()
            }
            None => String::new(),
        },
    };
    s.finish(ctx);
    Some(Selector {
        entities,
        exclude,
        metric,
        nodes,
        roles,
    })
}
