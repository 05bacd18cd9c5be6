//! The application sections of a simulated capture: work queues an application reports, the
//! scheduled jobs and the runs they made, and the workers an orchestrator manages.

use std::collections::BTreeMap;

use crate::model::{CronJob, Entity, Snapshot, WorkQueue};

use super::scenario::{self, EntitySpec, JobSpec};
use super::sections::Capture;
use super::trajectory::{Clock, NodeState, ts};

/// Pending, processing, completed and failed counts of each work queue.
pub(super) fn work_queues(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    let t = cap.t;
    for q in &cap.node.work_queue {
        let key = format!("workqueue:{}", q.name);
        let sample = |st: &mut NodeState, what: &str, tr: &scenario::Plain| {
            st.sample(&format!("{key}.{what}"), tr, t, &[])
                .map(|v| v.max(0.0).round() as u64)
        };
        let pending = sample(st, "pending", &q.pending);
        let workers = sample(st, "workers", &q.workers);
        let completed = q
            .completed
            .as_ref()
            .and_then(|tr| sample(st, "completed", tr));
        let failed = q.failed.as_ref().and_then(|tr| sample(st, "failed", tr));
        snap.work_queues.push(WorkQueue {
            name: q.name.clone(),
            total: None,
            completed,
            pending,
            failed,
            processing_workers: workers,
            expected_per_min: None,
        });
    }
}

/// Each job's last run up to the capture and how many runs in a row failed.
pub(super) fn jobs(cap: &Capture, snap: &mut Snapshot) {
    for j in &cap.node.job {
        snap.cron_jobs.push(job(j, cap.clock, cap.t));
    }
}

fn job(j: &JobSpec, clock: &Clock, t: f64) -> CronJob {
    let runs: Vec<f64> = j
        .runs
        .iter()
        .map(|r| clock.at(r))
        .filter(|r| *r <= t)
        .collect();
    let fail_from = j.failing_from.as_ref().map(|f| clock.at(f));
    let last = runs
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let failures = runs
        .iter()
        .filter(|r| fail_from.is_some_and(|f| **r >= f))
        .count() as u32;
    let mut outcome = BTreeMap::new();
    if let Some(mb) = j.freed_mb {
        outcome.insert("freed_mb".to_string(), if failures > 0 { 0.0 } else { mb });
    }
    CronJob {
        name: j.name.clone(),
        schedule: j.schedule.clone(),
        last_run: last.map(ts),
        last_success: last.map(|_| failures == 0),
        consecutive_failures: failures,
        outcome,
    }
}

/// The orchestrator's workers created by the capture's time, with their lifecycle so far.
pub(super) fn entities(cap: &Capture, snap: &mut Snapshot) {
    snap.entities.extend(
        cap.node
            .entity
            .iter()
            .filter_map(|e| entity(e, cap.clock, cap.t)),
    );
}

fn entity(e: &EntitySpec, clock: &Clock, t: f64) -> Option<Entity> {
    let created = clock.at(&e.created);
    if created > t {
        return None;
    }
    let promoted = e.promoted.as_ref().map(|p| clock.at(p)).filter(|p| *p <= t);
    let terminated = e
        .terminated
        .as_ref()
        .map(|p| clock.at(p))
        .filter(|p| *p <= t);
    let status = if terminated.is_some() {
        "terminated"
    } else if promoted.is_some() {
        "active"
    } else {
        "starting"
    };
    Some(Entity {
        id: e.id.clone(),
        kind: e.kind.clone(),
        created_at: ts(created),
        promoted_at: promoted.map(ts),
        terminated_at: terminated.map(ts),
        status: status.to_string(),
        termination_reason: None,
        provider_id: None,
        provider_status: None,
        tasks: e.tasks,
    })
}
