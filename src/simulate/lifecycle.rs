//! A container's life at one moment, as `docker inspect` would report it after the events a
//! scenario wrote for it: restarts, OOM kills, exits, crash loops and failing health checks.
//!
//! It follows what the engine does, not what would be convenient for a rule: a container the
//! restart policy starts again has its OOM flag and exit code cleared by that start (moby's
//! `setRunning`), so only its restart count and start time tell that it died; a health check
//! counts as `unhealthy` only after `health_retries` failures in a row.

use crate::model::{ContainerState, Health, HealthCheck};

use super::scenario::{ContainerSpec, Event, EventKind};
use super::trajectory::{Clock, ts};

/// Docker's defaults for a health check written without `--interval` / `--retries`.
const HEALTH_INTERVAL_S: f64 = 30.0;
const HEALTH_RETRIES: u32 = 3;
/// How many health-check results the collector keeps (the newest).
const HEALTH_LOG: usize = 3;

/// What the engine would say about the container at `t`.
pub(super) struct Life {
    pub state: ContainerState,
    pub restart_count: u32,
    pub started: f64,
    /// `Some` only for a container the scenario stops (its series then exist from the start).
    pub exit_code: Option<i64>,
    pub oom_killed: Option<bool>,
    pub health: Health,
    /// `Some` only for a container whose health checks the scenario describes.
    pub failing_streak: Option<u32>,
    pub health_log: Vec<HealthCheck>,
}

/// One change of a container's life.
enum Change {
    /// It starts (again); `counted` when the engine counts it as a restart.
    Start { counted: bool },
    /// It stops with this code.
    Stop { code: i64, oom: bool },
    /// It exits with `code` and is restarted every `every` until `until`, where it stays up.
    Loop { every: f64, until: f64, code: i64 },
    /// The node boots: a policy of `always` or `unless-stopped` starts a stopped container.
    Boot,
}

fn restarts_on_failure(policy: Option<&str>) -> bool {
    matches!(policy, Some("always" | "unless-stopped" | "on-failure"))
}

fn restarts_on_boot(policy: Option<&str>) -> bool {
    matches!(policy, Some("always" | "unless-stopped"))
}

fn mine<'e>(c: &ContainerSpec, events: &'e [Event]) -> impl Iterator<Item = &'e Event> {
    let name = c.name.clone();
    events
        .iter()
        .filter(move |e| e.container.as_deref() == Some(name.as_str()))
}

/// The changes of `c`'s life, oldest first (events at one time in the order written).
fn changes(
    c: &ContainerSpec,
    events: &[Event],
    reboots: &[f64],
    clock: &Clock,
) -> Vec<(f64, Change)> {
    let mut out = Vec::new();
    let policy = c.restart_policy.as_deref();
    for e in mine(c, events) {
        let at = clock.at(&e.at);
        let until = e.until.as_ref().map(|u| clock.at(u));
        match e.kind {
            EventKind::Restart => out.push((at, Change::Start { counted: true })),
            EventKind::OomKill => {
                out.push((
                    at,
                    Change::Stop {
                        code: 137,
                        oom: true,
                    },
                ));
                if restarts_on_failure(policy) {
                    out.push((at, Change::Start { counted: true }));
                }
            }
            EventKind::Exit => {
                let code = e.code.unwrap_or(1);
                out.push((at, Change::Stop { code, oom: false }));
                if let Some(u) = until {
                    out.push((u, Change::Start { counted: true }));
                }
            }
            EventKind::CrashLoop => {
                let every = e.every.map(|s| s.0).unwrap_or(60.0).max(1.0);
                let code = e.code.unwrap_or(1);
                let until = until.unwrap_or(f64::INFINITY);
                out.push((at, Change::Loop { every, until, code }));
            }
            _ => {}
        }
    }
    out.extend(reboots.iter().map(|r| (*r, Change::Boot)));
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Whether the scenario stops `c` at some point, so its exit code and OOM flag are reported.
fn stops(c: &ContainerSpec, events: &[Event]) -> bool {
    mine(c, events).any(|e| {
        matches!(
            e.kind,
            EventKind::OomKill | EventKind::Exit | EventKind::CrashLoop
        )
    })
}

/// What the engine's event stream says about `c` between two captures: the `oom` and `die`
/// events the collector counts, which a restart does not wipe as it wipes `docker inspect`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counted {
    pub oom_kills: Option<u32>,
    pub exits: Option<u32>,
    pub last_exit_code: Option<i64>,
}

/// The events of `c` in `(since, until]`, reported (zeros included) only for a container the
/// scenario stops, like its exit code. An OOM kill is an `oom` then a `die` with code 137; a
/// crash loop dies at its start and at every restart before it holds. A reboot's stops are
/// not counted: the engine's event buffer does not outlive the engine.
pub(super) fn counted(
    c: &ContainerSpec,
    events: &[Event],
    clock: &Clock,
    since: f64,
    until: f64,
) -> Counted {
    if !stops(c, events) {
        return Counted::default();
    }
    let within = |t: f64| since < t && t <= until;
    let mut n = Counted {
        oom_kills: Some(0),
        exits: Some(0),
        last_exit_code: None,
    };
    // When the newest exit counted so far happened.
    let mut newest = f64::NEG_INFINITY;
    let mut died = |n: &mut Counted, deaths: u32, t: f64, code: i64| {
        n.exits = n.exits.map(|x| x.saturating_add(deaths));
        if t >= newest {
            newest = t;
            n.last_exit_code = Some(code);
        }
    };
    for e in mine(c, events) {
        let at = clock.at(&e.at);
        match e.kind {
            EventKind::OomKill if within(at) => {
                n.oom_kills = n.oom_kills.map(|x| x.saturating_add(1));
                died(&mut n, 1, at, 137);
            }
            EventKind::Exit if within(at) => died(&mut n, 1, at, e.code.unwrap_or(1)),
            EventKind::CrashLoop => {
                let every = e.every.map(|s| s.0).unwrap_or(60.0).max(1.0);
                let end = e.until.as_ref().map_or(f64::INFINITY, |u| clock.at(u));
                // Deaths at at + k·every (k ≥ 0) before `end`: the first and last k in the span.
                let first = (((since - at) / every).floor() + 1.0).max(0.0);
                let mut last = ((until.min(end) - at) / every).floor();
                if at + last * every >= end {
                    last -= 1.0;
                }
                if last >= first {
                    let deaths = (last - first + 1.0).min(f64::from(u32::MAX)) as u32;
                    died(&mut n, deaths, at + last * every, e.code.unwrap_or(1));
                }
            }
            _ => {}
        }
    }
    n
}

/// Whether the scenario describes `c`'s health checks, so their streak and log are reported.
fn checked(c: &ContainerSpec, events: &[Event]) -> bool {
    c.health_interval.is_some() || mine(c, events).any(|e| e.kind == EventKind::Unhealthy)
}

/// When `c` (re)starts on its own, for the metrics that reset then.
pub(super) fn starts(c: &ContainerSpec, events: &[Event], clock: &Clock) -> Vec<f64> {
    let mut out = Vec::new();
    for (t, ch) in changes(c, events, &[], clock) {
        match ch {
            Change::Start { .. } => out.push(t),
            Change::Loop { until, .. } if until.is_finite() => out.push(until),
            _ => {}
        }
    }
    out
}

/// `c` at `t`: `base_started` is when it started before any event (created, or the node's boot).
pub(super) fn life(
    c: &ContainerSpec,
    events: &[Event],
    reboots: &[f64],
    clock: &Clock,
    t: f64,
    base_state: ContainerState,
    base_started: f64,
) -> Life {
    let mut state = base_state;
    let mut restarts = 0u32;
    let mut started = base_started;
    let mut code = 0i64;
    let mut oom = false;
    // A boot starts only what an event stopped; a container written `exited` stays so.
    let mut stopped = false;
    for (at, ch) in changes(c, events, reboots, clock) {
        if at > t {
            break;
        }
        match ch {
            Change::Start { counted } => {
                state = ContainerState::Running;
                restarts += u32::from(counted);
                started = started.max(at);
                code = 0;
                oom = false;
            }
            Change::Stop { code: c, oom: o } => {
                stopped = true;
                state = ContainerState::Exited;
                code = c;
                oom = o;
            }
            Change::Boot => {
                if stopped
                    && state == ContainerState::Exited
                    && restarts_on_boot(c.restart_policy.as_deref())
                {
                    state = ContainerState::Running;
                    started = started.max(at);
                    code = 0;
                    oom = false;
                }
            }
            Change::Loop {
                every,
                until,
                code: c,
            } => {
                // Restarts at at + k·every (k ≥ 1) before `until`, then the one that holds.
                let last = t.min(until);
                let bounces = ((last - at) / every).floor().max(0.0);
                let bounces = if at + bounces * every >= until {
                    bounces - 1.0
                } else {
                    bounces
                };
                restarts = restarts.saturating_add(bounces.clamp(0.0, 1e9) as u32);
                if bounces >= 1.0 {
                    started = started.max(at + bounces * every);
                }
                if t < until {
                    state = ContainerState::Restarting;
                    code = c;
                    oom = false;
                } else {
                    state = ContainerState::Running;
                    restarts = restarts.saturating_add(1);
                    started = started.max(until);
                    code = 0;
                    oom = false;
                }
            }
        }
    }
    let reported = stops(c, events);
    let mut life = Life {
        state,
        restart_count: restarts,
        started,
        exit_code: reported.then_some(code),
        oom_killed: reported.then_some(oom),
        health: base_health(c.health.as_deref()),
        failing_streak: None,
        health_log: Vec::new(),
    };
    if checked(c, events) && state == ContainerState::Running && life.health == Health::Healthy {
        health_checks(c, events, clock, t, &mut life);
    }
    life
}

/// The checks run every `health_interval` from the container's start; one fails while an
/// `unhealthy` event holds.
fn health_checks(c: &ContainerSpec, events: &[Event], clock: &Clock, t: f64, life: &mut Life) {
    let every = c
        .health_interval
        .map(|s| s.0)
        .unwrap_or(HEALTH_INTERVAL_S)
        .max(1.0);
    let retries = c.health_retries.unwrap_or(HEALTH_RETRIES).max(1);
    let failing: Vec<(f64, f64, &str)> = mine(c, events)
        .filter(|e| e.kind == EventKind::Unhealthy)
        .map(|e| {
            (
                clock.at(&e.at),
                e.until
                    .as_ref()
                    .map(|u| clock.at(u))
                    .unwrap_or(f64::INFINITY),
                e.output.as_deref().unwrap_or("health check failed"),
            )
        })
        .collect();
    let fails_at = |check: f64| {
        failing
            .iter()
            .find(|(from, to, _)| *from <= check && check < *to)
    };
    let n = ((t - life.started) / every).floor();
    if n < 1.0 {
        life.failing_streak = Some(0);
        return;
    }
    let check = |k: f64| life.started + k * every;
    let last = check(n);
    // The streak: checks since the start of the failure that holds at the newest check.
    let streak = match failing
        .iter()
        .filter(|(from, to, _)| *from <= last && last < *to)
        .map(|(from, _, _)| *from)
        .reduce(f64::min)
    {
        Some(from) => {
            let first = ((from.max(life.started) - life.started) / every)
                .ceil()
                .max(1.0);
            (n - first + 1.0).max(0.0).min(f64::from(u32::MAX)) as u32
        }
        None => 0,
    };
    let mut log = Vec::new();
    let mut k = n;
    while k >= 1.0 && log.len() < HEALTH_LOG {
        let at = check(k);
        let (exit_code, output) = match fails_at(at) {
            Some((_, _, out)) => (1, (*out).to_string()),
            None => (0, String::new()),
        };
        log.push(HealthCheck {
            start: ts(at.floor()),
            exit_code,
            output,
        });
        k -= 1.0;
    }
    log.reverse();
    life.failing_streak = Some(streak);
    life.health_log = log;
    life.health = if streak >= retries {
        Health::Unhealthy
    } else {
        Health::Healthy
    };
}

pub(super) fn base_health(health: Option<&str>) -> Health {
    match health {
        Some("healthy") => Health::Healthy,
        Some("unhealthy") => Health::Unhealthy,
        Some("starting") => Health::Starting,
        _ => Health::None,
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Snapshot;

    const ONE: &str = "image = \"x\"\nmem = \"100MB\"\n";

    use crate::simulate::one_node::run;

    /// `(oom kills, exits, last exit code)` of `name` at each capture.
    fn counted(snaps: &[Snapshot], name: &str) -> Vec<(Option<u32>, Option<u32>, Option<i64>)> {
        snaps
            .iter()
            .map(|s| {
                let c = s
                    .container(name)
                    .unwrap_or_else(|| panic!("{name} not listed"));
                (c.oom_kills, c.exits, c.last_exit_code)
            })
            .collect()
    }

    #[test]
    fn the_engine_events_of_each_capture_span_are_counted_once() {
        // Captures at 00:00, 00:15, 00:30, 00:45, 01:00.
        let snaps = run(&format!(
            "events = [{{ kind = \"oom-kill\", container = \"a\", at = \"+10m\" }}, {{ kind = \"oom-kill\", container = \"a\", at = \"+12m\" }}, {{ kind = \"exit\", container = \"b\", at = \"+20m\", until = \"+25m\", code = 3 }}, {{ kind = \"crash-loop\", container = \"c\", at = \"+5m\", until = \"+40m\", every = \"2m\", code = 78 }}]\n[[node.container]]\nname = \"a\"\nrestart_policy = \"always\"\n{ONE}[[node.container]]\nname = \"b\"\n{ONE}[[node.container]]\nname = \"c\"\nrestart_policy = \"always\"\n{ONE}[[node.container]]\nname = \"d\"\n{ONE}"
        ));
        let a = counted(&snaps, "a");
        assert_eq!(a[0], (Some(0), Some(0), None));
        // Both kills in one span, though the restarts cleared the flag each time.
        assert_eq!(a[1], (Some(2), Some(2), Some(137)));
        assert_eq!(a[2], (Some(0), Some(0), None));
        assert_eq!(counted(&snaps, "b")[2], (Some(0), Some(1), Some(3)));
        // Dies at 00:05, 00:07 … 00:39 (18 times): 00:05…00:15 is 6, 00:17…00:29 is 7,
        // 00:31…00:39 is 5; it holds from 00:40.
        let c: Vec<_> = counted(&snaps, "c").iter().map(|x| x.1).collect();
        assert_eq!(c, [Some(0), Some(6), Some(7), Some(5), Some(0)]);
        assert_eq!(counted(&snaps, "c")[3].2, Some(78));
        // A container the scenario never stops has no counts, like its exit code.
        assert_eq!(counted(&snaps, "d")[2], (None, None, None));
    }
}
