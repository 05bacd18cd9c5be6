#![doc = include_str!("schedule_overdue.md")]

use std::str::FromStr;

use chrono::Utc;

use super::{Candidate, EvalContext, Kind, KindSpec, ParamReader, Target, string_list};
use crate::markdown::code_span;
use crate::rules::Rule;
use crate::rules::select::glob_match;
use crate::tomlread::Ctx;
use crate::units::fmt_duration;

pub const SPEC: KindSpec = KindSpec {
    name: "schedule-overdue",
    doc: include_str!("schedule_overdue.md"),
    target: Target::Node,
    event: false,
    variables: &[
        "job", "schedule", "last_run", "expected", "late", "failures",
    ],
    headline: &[],
    parse,
};

#[derive(Debug, Clone)]
pub struct Params {
    pub jobs: Vec<String>,
    pub grace_s: f64,
    pub max_failures: u32,
}

fn parse(p: &mut ParamReader, ctx: &mut Ctx) -> Option<Kind> {
    let mut jobs = string_list(p, ctx, "jobs");
    if jobs.is_empty() {
        jobs.push("*".into());
    }
    Some(Kind::ScheduleOverdue(Params {
        jobs,
        grace_s: p.duration(ctx, "grace").unwrap_or(900.0),
        max_failures: p.fields.count(ctx, "max_failures").unwrap_or(1).max(1) as u32,
    }))
}

pub fn evaluate(p: &Params, rule: &Rule, ctx: &EvalContext, out: &mut Vec<Candidate>) {
    for node in ctx.window.nodes().filter(|n| rule.select.node_matches(n)) {
        let Some(snap) = node.latest() else { continue };
        let now = snap.captured_at;
        for job in &snap.cron_jobs {
            if !p.jobs.iter().any(|g| glob_match(g, &job.name)) {
                continue;
            }
            let entity = format!("job:{}", job.name);
            let mut problems = Vec::new();
            let mut late = None;
            // The run the schedule asked for most recently, at least `grace` ago, in the
            // fleet's time zone (cron is wall-clock time).
            let cutoff = (now - chrono::Duration::seconds(p.grace_s as i64)).with_timezone(&ctx.tz);
            let expected = match croner::Cron::from_str(&job.schedule) {
                Ok(cron) => cron.find_previous_occurrence(&cutoff, true).ok(),
                Err(e) => {
                    problems.push(format!(
                        "its schedule {} cannot be read ({e})",
                        code_span(&job.schedule)
                    ));
                    None
                }
            };
            if let Some(expected) = &expected {
                let expected_utc = expected.with_timezone(&Utc);
                match job.last_run {
                    Some(last) if last >= expected_utc => {}
                    Some(last) => {
                        let behind = (now - last).num_seconds() as f64;
                        late = Some(behind);
                        problems.push(format!(
                            "it last ran at {} although the schedule {} asked for a run at {}",
                            ctx.time(last.timestamp()),
                            code_span(&job.schedule),
                            ctx.time(expected_utc.timestamp())
                        ));
                    }
                    None => problems.push(format!(
                        "it has no recorded run although the schedule {} asked for one at {}",
                        code_span(&job.schedule),
                        ctx.time(expected_utc.timestamp())
                    )),
                }
            }
            if job.consecutive_failures >= p.max_failures {
                problems.push(format!("its last {} runs failed", job.consecutive_failures));
            }
            if problems.is_empty() {
                continue;
            }
            let mut c = Candidate::new(node, &entity, "schedule", now.timestamp());
            c.value("job", None, code_span(&job.name));
            c.value("schedule", None, code_span(&job.schedule));
            c.value(
                "last_run",
                None,
                job.last_run
                    .map(|t| ctx.time(t.timestamp()))
                    .unwrap_or_else(|| "never".into()),
            );
            c.value(
                "expected",
                None,
                expected
                    .map(|e| ctx.time(e.with_timezone(&Utc).timestamp()))
                    .unwrap_or_else(|| "-".into()),
            );
            c.value(
                "late",
                late,
                late.map(fmt_duration).unwrap_or_else(|| "-".into()),
            );
            c.value(
                "failures",
                Some(f64::from(job.consecutive_failures)),
                job.consecutive_failures.to_string(),
            );
            c.evidence = format!("Job {}: {}.", code_span(&job.name), problems.join("; "));
            out.push(c);
        }
    }
}
