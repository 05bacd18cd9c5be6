//! A candidate rendered into a finding: its template variables (the kind's values, the subject,
//! facts about it) and its title and recommendation from the rule's templates, with the advice
//! that fits the subject. A cumulative count is rendered with the ledger's episode total.

use std::collections::BTreeMap;

use super::kinds::{self, Candidate, EvalContext};
use super::{Library, Rule, advice, resolution, template};
use crate::history::metrics::{entity_label, metric_label};
use crate::model::{EvidenceValue, Finding, Impact, Lifecycle};

impl Library {
    /// Renders a candidate; one whose kind counts a cumulative value and whose episode is open
    /// (`count` gives the ledger's total and its start) is rendered with the episode's count.
    pub(super) fn render_counted(
        &self,
        rule: &Rule,
        c: Candidate,
        ctx: &EvalContext,
        count: &dyn Fn(&Finding) -> Option<BTreeMap<String, EvidenceValue>>,
    ) -> Finding {
        let cumulative = kinds::cumulative(rule.kind_name);
        let copy = cumulative.as_ref().map(|_| c.clone());
        let f = self.render(rule, c, ctx);
        let (Some(mut c), Some(cum)) = (copy, cumulative) else {
            return f;
        };
        let Some(values) = count(&f) else {
            return f;
        };
        c.values.extend(values);
        // The start is printed as of now ("Feb 22 17:30" once it is a day old).
        if let Some(from) = c.values.get_mut(&cum.from)
            && let Some(unix) = from.value
        {
            from.text = ctx.time(unix as i64);
        }
        self.render(rule, c, ctx)
    }

    fn render(&self, rule: &Rule, c: Candidate, ctx: &EvalContext) -> Finding {
        let mut vars: BTreeMap<String, String> = c
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.text.clone()))
            .collect();
        let name = c
            .entity
            .split_once(':')
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| c.entity.clone());
        vars.insert("rule".into(), rule.id.clone());
        vars.insert("node".into(), c.nodes.join("/"));
        vars.insert("nodes".into(), c.nodes.join(", "));
        vars.insert("entity".into(), c.entity.clone());
        vars.insert("name".into(), name);
        vars.insert("subject".into(), entity_label(&c.entity));
        vars.insert("metric".into(), c.metric.clone());
        vars.insert("metric_label".into(), metric_label(&c.metric).to_string());
        vars.insert("severity".into(), rule.severity.label().to_string());
        let node = c.nodes.first().and_then(|n| ctx.window.node(n));
        for (k, v) in advice::facts(node, &c.entity, |unix| ctx.time(unix)) {
            vars.entry(k.to_string()).or_insert(v);
        }
        let subject = advice::subject(node, &c.entity);
        let recommendation_source = rule
            .advice
            .iter()
            .find(|a| a.fits(&subject))
            .map(|a| a.recommendation.as_str())
            .unwrap_or(&rule.recommendation);
        let render = |source: &str| {
            template::render(&self.env, source, &vars).unwrap_or_else(|e| {
                tracing::error!("rule {}: template failed: {e}", rule.id);
                format!("(template error in rule {}: {e})", rule.id)
            })
        };
        let context = if c.any_state {
            BTreeMap::new()
        } else {
            resolution::context(ctx.states, &c.nodes)
        };
        let raised_in_steady_rest = if rule.worse_under_work {
            resolution::steady_rest(ctx, &context)
        } else {
            Default::default()
        };
        let title = render(&rule.title);
        let recommendation = render(recommendation_source);
        let mut finding = Finding {
            rule_id: rule.id.clone(),
            kind: rule.kind_name.to_string(),
            severity: rule.severity,
            nodes: c.nodes,
            entity: c.entity,
            metric: c.metric,
            observed_at: c.observed_at,
            title,
            evidence: c.evidence,
            recommendation,
            values: c.values,
            event: c.event,
            event_id: c.event_id,
            scope: c.scope,
            lifecycle: Lifecycle {
                headline: kinds::spec(rule.kind_name)
                    .map(|k| k.headline.iter().map(|h| h.to_string()).collect())
                    .unwrap_or_default(),
                escalate_after: rule.escalate_after,
                verify: rule.verify.clone(),
                resolve_after: rule.resolve_after,
                blinds: rule.blinds,
                worse_under_work: rule.worse_under_work,
                impact: Some(
                    rule.impact
                        .unwrap_or_else(|| Impact::of_kind(rule.kind_name, rule.blinds)),
                ),
                cumulative: kinds::cumulative(rule.kind_name),
            },
            context,
            raised_in_steady_rest,
            members: Vec::new(),
            facets: Vec::new(),
        };
        if finding.recommendation.is_empty() {
            finding.recommendation = rule.description.clone();
        }
        finding
    }
}
