//! The Docker section of a simulated capture: the engine, and each container as `docker inspect`
//! and `docker stats` would show it at that moment (present or not, its version, restarts,
//! memory and CPU), with the log lines it wrote since the previous capture.

use crate::model::{
    Container, ContainerState, DockerInfo, Health, LogStream, Port, Snapshot, Truncated,
    TruncatedReason,
};

use super::lifecycle;
use super::logs::log_stream;
use super::scenario::{ContainerSpec, EphemeralSpec, EventKind, MAX_EPHEMERAL_LISTED};
use super::sections::{Capture, event_active};
use super::trajectory::{Clock, NodeState, hash, ts, u};

/// The engine and its containers, when the docker source answers.
pub(super) fn docker(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    if !cap.status(snap, "docker", 900) {
        return;
    }
    snap.docker = cap.node.docker.as_ref().map(|d| DockerInfo {
        engine_version: d.engine_version.clone(),
        api_version: Some("1.47".into()),
        compose_version: d.compose_version.clone(),
        events: None,
    });
    let mut containers = Vec::new();
    for c in &cap.node.container {
        if let Some(container) = container(cap, c, st, snap) {
            containers.push(container);
        }
    }
    if !cap.containers_down {
        for e in &cap.node.ephemeral {
            ephemeral(cap, e, st, &mut containers);
        }
    }
    snap.containers = Some(containers);
}

/// The short-lived containers of a worker farm listed at the capture: created every `every`,
/// running for `lives`, then exited (with `code`) and still listed for `keep`.
fn ephemeral(cap: &Capture, e: &EphemeralSpec, st: &mut NodeState, out: &mut Vec<Container>) {
    let (clock, t) = (cap.clock, cap.t);
    let every = e.every.0.max(1.0);
    let lives = e.lives.0.max(0.0);
    let keep = e.keep.map(|k| k.0).unwrap_or(0.0).max(0.0);
    let until = e
        .until
        .as_ref()
        .map(|u| clock.at(u))
        .unwrap_or(f64::INFINITY);
    // Numbered from the first one created; without `from` the farm already runs at the start.
    let (origin, first_k) = match &e.from {
        Some(f) => (clock.at(f), 0.0),
        None => (st.t0, -((lives + keep) / every).ceil()),
    };
    let key = format!("e.{}", e.prefix);
    let mem = e
        .mem
        .as_ref()
        .map_or(Some(0.0), |tr| st.sample(&format!("{key}.mem"), tr, t, &[]));
    let cpu = e
        .cpu
        .as_ref()
        .map_or(Some(0.0), |tr| st.sample(&format!("{key}.cpu"), tr, t, &[]));
    // Those created in (t - lives - keep, t] and before `until`.
    let newest = ((t - origin) / every).floor();
    let oldest = (((t - lives - keep - origin) / every).floor() + 1.0).max(first_k);
    let mut k = oldest;
    while k <= newest && newest - k < MAX_EPHEMERAL_LISTED {
        let created = origin + k * every;
        k += 1.0;
        if created >= until {
            break;
        }
        let running = t < created + lives;
        let name = format!("{}{}", e.prefix, (k - first_k) as i64);
        out.push(Container {
            id: Some(format!(
                "{:012x}",
                hash(&[cap.node.name.as_bytes(), name.as_bytes()]) & 0xffff_ffff_ffff
            )),
            name,
            compose_project: None,
            compose_service: None,
            image: e.image.clone(),
            tag: e.tag.clone(),
            image_id: None,
            image_created: None,
            revision: None,
            state: if running {
                ContainerState::Running
            } else {
                ContainerState::Exited
            },
            health: Health::None,
            failing_streak: None,
            health_log: Vec::new(),
            restart_count: Some(0),
            restart_policy: None,
            oom_killed: Some(false),
            exit_code: Some(if running { 0 } else { e.code.unwrap_or(0) }),
            oom_kills: None,
            exits: None,
            last_exit_code: None,
            started_at: Some(ts(created.floor())),
            ports: Vec::new(),
            command: Vec::new(),
            // The collector asks the engine for stats only of a running container.
            mem_usage_bytes: if running { u(mem) } else { None },
            mem_limit_bytes: None,
            cpu_cores: if running { cpu } else { None },
            pids: None,
            blkio_write_bytes: None,
            size_rw_bytes: Some(0),
            size_root_fs_bytes: None,
            size_measured_at: None,
            volumes: Vec::new(),
        });
    }
}

/// One container at the capture's time, or `None` when it is not there. Its trajectories move
/// even while it is absent, so the value when it comes back is right.
fn container(
    cap: &Capture,
    c: &ContainerSpec,
    st: &mut NodeState,
    snap: &mut Snapshot,
) -> Option<Container> {
    let (clock, t) = (cap.clock, cap.t);
    let from = c.from.as_ref().map(|f| clock.at(f)).unwrap_or(f64::MIN);
    let until = c
        .until
        .as_ref()
        .map(|f| clock.at(f))
        .unwrap_or(f64::INFINITY);
    let present = !cap.containers_down && from <= t && t < until;
    let events = &cap.node.events;
    let restarts = lifecycle::starts(c, events, clock);
    let mut resets: Vec<f64> = cap.reboots.iter().chain(restarts.iter()).copied().collect();
    resets.sort_by(f64::total_cmp);
    let key = format!("c.{}", c.name);
    let mem = st.sample(&format!("{key}.mem"), &c.mem, t, &resets);
    let cpu = c
        .cpu
        .as_ref()
        .and_then(|tr| st.sample(&format!("{key}.cpu"), tr, t, &resets));
    let size_rw = c
        .size_rw
        .as_ref()
        .and_then(|tr| st.sample(&format!("{key}.rw"), tr, t, &[]));
    let blkio = c
        .blkio_write
        .as_ref()
        .and_then(|tr| st.sample(&format!("{key}.blkio"), tr, t, &resets));
    if !present {
        return None;
    }
    let (image, tag, revision) = version_at(c, clock, t);
    let life = lifecycle::life(
        c,
        events,
        &cap.reboots,
        clock,
        t,
        container_state(&c.state),
        from.max(cap.boot + 25.0),
    );
    let counted = lifecycle::counted(c, events, clock, cap.window_start, t);
    let state = life.state;
    let running = state == ContainerState::Running;
    if !c.log.is_empty() {
        snap.logs.push(container_log(cap, c, st.t0));
    }
    Some(Container {
        name: c.name.clone(),
        id: Some(format!(
            "{:012x}",
            hash(&[cap.node.name.as_bytes(), c.name.as_bytes()]) & 0xffff_ffff_ffff
        )),
        compose_project: c.compose_project.clone(),
        compose_service: c.compose_project.as_ref().map(|_| c.name.clone()),
        image,
        tag,
        image_id: None,
        image_created: None,
        revision,
        state,
        health: life.health,
        failing_streak: life.failing_streak,
        health_log: life.health_log,
        restart_count: Some(life.restart_count),
        restart_policy: c.restart_policy.clone(),
        oom_killed: life.oom_killed,
        exit_code: life.exit_code,
        oom_kills: counted.oom_kills,
        exits: counted.exits,
        last_exit_code: counted.last_exit_code,
        started_at: Some(ts(life.started.floor())),
        ports: c.ports.iter().map(|p| published(*p)).collect(),
        command: c.command.clone(),
        // Stats (memory, CPU, block writes) are read only for a running container, as the
        // collector does (`sources::docker`): a stopped one has none, not zero.
        mem_usage_bytes: if running { u(mem) } else { None },
        mem_limit_bytes: c.mem_limit.as_ref().map(|q| q.0 as u64),
        cpu_cores: if running { cpu } else { None },
        pids: None,
        blkio_write_bytes: if running { u(blkio) } else { None },
        size_rw_bytes: u(size_rw),
        size_root_fs_bytes: match (size_rw, &c.image_size) {
            (Some(rw), Some(img)) => Some((rw + img.0) as u64),
            _ => None,
        },
        size_measured_at: None,
        volumes: Vec::new(),
    })
}

/// The lines `c` wrote since the previous capture, as the collector read them: with a `log-cut`
/// event active, reading stopped `unread` before the end of the window, and the stream says so.
fn container_log(cap: &Capture, c: &ContainerSpec, t0: f64) -> LogStream {
    let source = format!("container:{}", c.name);
    let cut = cap.node.events.iter().find(|e| {
        e.kind == EventKind::LogCut
            && e.container.as_deref() == Some(c.name.as_str())
            && event_active(cap.clock, e, cap.t)
    });
    let Some(cut) = cut else {
        return log_stream(&c.log, &source, cap.window_start, cap.t, cap.clock, t0);
    };
    let unread = cut.unread.map(|u| u.0).unwrap_or(0.0);
    let end = (cap.t - unread).max(cap.window_start);
    let mut stream = log_stream(&c.log, &source, cap.window_start, end, cap.clock, t0);
    stream.window_end = ts(cap.t);
    let after = stream.templates.iter().filter_map(|tpl| tpl.last_ts).max();
    let bytes_read = stream
        .templates
        .iter()
        .map(|tpl| {
            let line = tpl.samples.first().map(String::len).unwrap_or(80) as u64 + 1;
            line.saturating_mul(tpl.count)
        })
        .fold(0u64, u64::saturating_add);
    stream.truncated = Some(Truncated {
        reason: TruncatedReason::Bytes,
        after,
        bytes_read,
    });
    stream
}

/// Image, tag and revision at `t`: the declared ones with every version change up to `t` applied
/// in time order.
fn version_at(
    c: &ContainerSpec,
    clock: &Clock,
    t: f64,
) -> (String, Option<String>, Option<String>) {
    let (mut image, mut tag, mut revision) = (c.image.clone(), c.tag.clone(), c.revision.clone());
    let mut changes: Vec<_> = c.versions.iter().map(|v| (clock.at(&v.at), v)).collect();
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, v) in changes {
        if at <= t {
            if let Some(i) = &v.image {
                image = i.clone();
            }
            if v.tag.is_some() {
                tag = v.tag.clone();
            }
            if v.revision.is_some() {
                revision = v.revision.clone();
            }
        }
    }
    (image, tag, revision)
}

fn container_state(state: &str) -> ContainerState {
    match state {
        "exited" => ContainerState::Exited,
        "restarting" => ContainerState::Restarting,
        "paused" => ContainerState::Paused,
        "created" => ContainerState::Created,
        "dead" => ContainerState::Dead,
        _ => ContainerState::Running,
    }
}

/// A port published on every interface under the same number.
fn published(port: u16) -> Port {
    Port {
        private: port,
        public: Some(port),
        ip: Some("0.0.0.0".into()),
        proto: "tcp".into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{ContainerState, Health, Snapshot};

    use crate::simulate::one_node::run;

    /// `(state, restart count, exit code, oom flag)` of container `name` at each capture.
    fn life(
        snaps: &[Snapshot],
        name: &str,
    ) -> Vec<(ContainerState, u32, Option<i64>, Option<bool>)> {
        snaps
            .iter()
            .map(|s| {
                let c = s
                    .container(name)
                    .unwrap_or_else(|| panic!("{name} not listed"));
                (
                    c.state,
                    c.restart_count.unwrap_or(0),
                    c.exit_code,
                    c.oom_killed,
                )
            })
            .collect()
    }

    const ONE: &str = "image = \"x\"\nmem = \"100MB\"\n";

    #[test]
    fn an_oom_kill_leaves_a_container_without_restart_policy_exited_and_flagged() {
        let snaps = run(&format!(
            "events = [{{ kind = \"oom-kill\", container = \"a\", at = \"+10m\" }}, {{ kind = \"oom-kill\", container = \"b\", at = \"+10m\" }}]\n[[node.container]]\nname = \"a\"\n{ONE}[[node.container]]\nname = \"b\"\nrestart_policy = \"unless-stopped\"\n{ONE}"
        ));
        use ContainerState::{Exited, Running};
        let a = life(&snaps, "a");
        assert_eq!(a[0], (Running, 0, Some(0), Some(false)));
        assert_eq!(a[1], (Exited, 0, Some(137), Some(true)));
        // No stats for a container that is not running, as the collector reads none.
        let stats = snaps[1]
            .container("a")
            .map(|c| (c.mem_usage_bytes, c.cpu_cores, c.blkio_write_bytes));
        assert_eq!(stats, Some((None, None, None)));
        // The policy starts it again at once, and the start clears the flag and the code, as
        // the engine does: only the restart count and the start time tell.
        let b = life(&snaps, "b");
        assert_eq!(b[1], (Running, 1, Some(0), Some(false)));
        let started = snaps[1].container("b").and_then(|c| c.started_at);
        assert_eq!(
            started.map(|t| t.to_rfc3339()),
            Some("2026-02-18T00:10:00+00:00".into())
        );
    }

    #[test]
    fn an_exit_holds_until_its_end_and_a_crash_loop_counts_one_restart_per_every() {
        let snaps = run(&format!(
            "events = [{{ kind = \"exit\", container = \"a\", at = \"+10m\", until = \"+40m\", code = 2 }}, {{ kind = \"crash-loop\", container = \"b\", at = \"+5m\", until = \"+40m\", every = \"2m\", code = 3 }}]\n[[node.container]]\nname = \"a\"\n{ONE}[[node.container]]\nname = \"b\"\nrestart_policy = \"always\"\n{ONE}"
        ));
        use ContainerState::{Exited, Restarting, Running};
        let a = life(&snaps, "a");
        assert_eq!(a[1], (Exited, 0, Some(2), Some(false)));
        assert_eq!(a[2], (Exited, 0, Some(2), Some(false)));
        assert_eq!(a[3], (Running, 1, Some(0), Some(false)));
        let b = life(&snaps, "b");
        // Restarts at 07, 09, …: five by 00:15, twelve by 00:30, seventeen before 00:40 and the
        // one that holds at 00:40.
        assert_eq!(b[1], (Restarting, 5, Some(3), Some(false)));
        assert_eq!(b[2], (Restarting, 12, Some(3), Some(false)));
        assert_eq!(b[3], (Running, 18, Some(0), Some(false)));
        assert_eq!(b[4], b[3]);
    }

    #[test]
    fn a_failing_health_check_turns_unhealthy_after_its_retries_and_recovers() {
        let snaps = run(
            "events = [{ kind = \"unhealthy\", container = \"a\", at = \"+20m\", until = \"+50m\", output = \"refused\" }, { kind = \"unhealthy\", container = \"b\", at = \"+29m40s\", until = \"+30m10s\" }]\n[[node.container]]\nname = \"a\"\nimage = \"x\"\nmem = \"1MB\"\nhealth = \"healthy\"\nhealth_interval = \"1m\"\n[[node.container]]\nname = \"b\"\nimage = \"x\"\nmem = \"1MB\"\nhealth = \"healthy\"\nhealth_interval = \"10s\"\n",
        );
        let a: Vec<_> = snaps
            .iter()
            .map(|s| s.container("a").map(|c| (c.health, c.failing_streak)))
            .collect();
        assert_eq!(a[1], Some((Health::Healthy, Some(0))));
        assert_eq!(a[2], Some((Health::Unhealthy, Some(10))));
        assert_eq!(a[3], Some((Health::Unhealthy, Some(25))));
        assert_eq!(a[4], Some((Health::Healthy, Some(0))));
        let log = snaps[2]
            .container("a")
            .map(|c| c.health_log.clone())
            .unwrap_or_default();
        assert_eq!(log.len(), 3);
        assert!(
            log.iter()
                .all(|h| h.exit_code == 1 && h.output == "refused")
        );
        // One or two failed checks are not yet `unhealthy` (Docker's three retries).
        let b = snaps[2]
            .container("b")
            .map(|c| (c.health, c.failing_streak));
        assert_eq!(b, Some((Health::Healthy, Some(2))));
    }

    #[test]
    fn a_log_cut_leaves_the_end_of_each_window_unread() {
        let snaps = run(
            "events = [{ kind = \"log-cut\", container = \"a\", at = \"+20m\", until = \"+50m\", unread = \"5m\" }]\n[[node.container]]\nname = \"a\"\nimage = \"x\"\nmem = \"1MB\"\nlog = [{ message = \"tick\", every = \"1s\" }]\n",
        );
        let stream = |i: usize| snaps[i].logs[0].clone();
        assert_eq!(stream(1).truncated, None);
        assert_eq!(stream(1).lines_total, 900);
        let cut = stream(2);
        assert_eq!(cut.lines_total, 600);
        let after = cut.truncated.as_ref().and_then(|t| t.after);
        assert_eq!(after.map(|a| (cut.window_end - a).num_seconds()), Some(300));
        assert_eq!(stream(4).truncated, None);
    }

    #[test]
    fn a_worker_farm_lists_its_short_lived_containers_running_then_exited() {
        let snaps = run(
            "[[node.ephemeral]]\nprefix = \"task-\"\nimage = \"w\"\nevery = \"10m\"\nlives = \"4m\"\nkeep = \"15m\"\ncode = 1\nuntil = \"+45m\"\n",
        );
        let listed = |i: usize| -> Vec<(String, ContainerState, Option<i64>)> {
            snaps[i]
                .containers
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.state, c.exit_code))
                .collect()
        };
        use ContainerState::{Exited, Running};
        assert_eq!(
            listed(1),
            vec![
                ("task-3".into(), Exited, Some(1)),
                ("task-4".into(), Exited, Some(1))
            ]
        );
        assert_eq!(
            listed(3),
            vec![
                ("task-6".into(), Exited, Some(1)),
                ("task-7".into(), Exited, Some(1))
            ]
        );
        // None is created from 00:45 on: the last one (00:40) is gone by 01:00.
        assert_eq!(listed(4), vec![]);
        assert_eq!(listed(0)[1], ("task-3".into(), Running, Some(0)));
    }

    #[test]
    fn the_same_scenario_with_events_gives_the_same_bytes() {
        let body = "events = [{ kind = \"crash-loop\", container = \"a\", at = \"+5m\", every = \"3m\" }, { kind = \"unhealthy\", container = \"a\", at = \"+1m\" }]\n[[node.container]]\nname = \"a\"\nimage = \"x\"\nhealth = \"healthy\"\nmem = { start = \"1MB\", noise = \"0.5MB\" }\n[[node.ephemeral]]\nprefix = \"t\"\nimage = \"w\"\nevery = \"7m\"\nlives = \"3m\"\nmem = { start = \"5MB\", noise = \"1MB\" }\n";
        let bytes = |snaps: Vec<Snapshot>| serde_json::to_vec(&snaps).unwrap_or_default();
        let first = bytes(run(body));
        assert!(!first.is_empty());
        assert_eq!(first, bytes(run(body)));
    }
}
