//! The Docker section of a simulated capture: the engine, and each container as `docker inspect`
//! and `docker stats` would show it at that moment (present or not, its version, restarts,
//! memory and CPU), with the log lines it wrote since the previous capture.

use crate::model::{
    Container, ContainerState, DockerInfo, Health, LogStream, Port, Snapshot, Truncated,
    TruncatedReason,
};

use super::lifecycle;
use super::logs::log_stream;
use super::scenario::{ContainerSpec, EphemeralSpec, EventKind};
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

/// How many short-lived containers one `[[node.ephemeral]]` may list in a capture; the scenario
/// check refuses more.
pub(crate) const MAX_EPHEMERAL_LISTED: f64 = 1000.0;

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
        .and_then(|tr| st.sample(&format!("{key}.mem"), tr, t, &[]));
    let cpu = e
        .cpu
        .as_ref()
        .and_then(|tr| st.sample(&format!("{key}.cpu"), tr, t, &[]));
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
            started_at: Some(ts(created.floor())),
            ports: Vec::new(),
            command: Vec::new(),
            mem_usage_bytes: if running { u(mem) } else { Some(0) },
            mem_limit_bytes: None,
            cpu_cores: if running { cpu } else { Some(0.0) },
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
        started_at: Some(ts(life.started.floor())),
        ports: c.ports.iter().map(|p| published(*p)).collect(),
        command: c.command.clone(),
        mem_usage_bytes: if running { u(mem) } else { Some(0) },
        mem_limit_bytes: c.mem_limit.as_ref().map(|q| q.0 as u64),
        cpu_cores: if running { cpu } else { Some(0.0) },
        pids: None,
        blkio_write_bytes: None,
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
