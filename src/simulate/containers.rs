//! The Docker section of a simulated capture: the engine, and each container as `docker inspect`
//! and `docker stats` would show it at that moment (present or not, its version, restarts,
//! memory and CPU), with the log lines it wrote since the previous capture.

use crate::model::{Container, ContainerState, DockerInfo, Health, Port, Snapshot};

use super::logs::log_stream;
use super::scenario::{ContainerSpec, EventKind};
use super::sections::Capture;
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
    snap.containers = Some(containers);
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
    let restarts = restarts(cap, c);
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
    let restart_count = restarts.iter().filter(|r| **r <= t).count() as u32;
    let started = restarts
        .iter()
        .copied()
        .filter(|r| *r <= t)
        .fold(from.max(cap.boot + 25.0), f64::max);
    let state = container_state(&c.state);
    let running = state == ContainerState::Running;
    if !c.log.is_empty() {
        snap.logs.push(log_stream(
            &c.log,
            &format!("container:{}", c.name),
            cap.window_start,
            t,
            clock,
            st.t0,
        ));
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
        health: health(c.health.as_deref()),
        failing_streak: None,
        health_log: Vec::new(),
        restart_count: Some(restart_count),
        restart_policy: c.restart_policy.clone(),
        oom_killed: None,
        exit_code: None,
        started_at: Some(ts(started.floor())),
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

/// When container `c` restarts on its own (not with the node).
fn restarts(cap: &Capture, c: &ContainerSpec) -> Vec<f64> {
    cap.node
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Restart && e.container.as_deref() == Some(&c.name))
        .map(|e| cap.clock.at(&e.at))
        .collect()
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

fn health(health: Option<&str>) -> Health {
    match health {
        Some("healthy") => Health::Healthy,
        Some("unhealthy") => Health::Unhealthy,
        Some("starting") => Health::Starting,
        _ => Health::None,
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
