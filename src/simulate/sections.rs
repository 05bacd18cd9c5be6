//! One capture of one node, built section by section as the collectors would have answered: the
//! events of the moment (dark, containers down, a source failing) decide which sources answer,
//! and each section samples its own trajectories. Every section reads the same [`Capture`].

use crate::model::{Disk, Gpu, Host, Snapshot, SourceStatus};

use super::containers::docker;
use super::scenario::{self, EventKind, HostSpec, NodeSpec, Scenario};
use super::services::{endpoints, postgres, rabbitmq, redis};
use super::trajectory::{Clock, NodeState, hash, ts, u, unit_noise};
use super::workload::{entities, jobs, work_queues};

/// What every section of one capture needs to know: the node, the time, and what is happening
/// to the node then.
pub(super) struct Capture<'a> {
    pub(super) node: &'a NodeSpec,
    pub(super) clock: &'a Clock,
    pub(super) t: f64,
    /// The node's reboots: trajectories that restart with the node reset at each.
    pub(super) reboots: Vec<f64>,
    /// When the node last booted before `t`.
    pub(super) boot: f64,
    /// Logs are read from the previous capture to this one.
    pub(super) window_start: f64,
    /// The node answers but runs no containers; its readings are null.
    pub(super) containers_down: bool,
}

impl Capture<'_> {
    fn active(&self, kind: EventKind) -> Option<&scenario::Event> {
        self.node
            .events
            .iter()
            .find(|e| e.kind == kind && event_active(self.clock, e, self.t))
    }

    fn source_down(&self, name: &str) -> Option<&scenario::Event> {
        self.node.events.iter().find(|e| {
            e.kind == EventKind::SourceDown
                && e.source.as_deref() == Some(name)
                && event_active(self.clock, e, self.t)
        })
    }

    /// Records how source `name` answered and says whether it did.
    pub(super) fn status(&self, snap: &mut Snapshot, name: &str, ok_ms: u64) -> bool {
        match self.source_down(name) {
            Some(e) => {
                let err = e
                    .error
                    .clone()
                    .unwrap_or_else(|| "connection refused".into());
                snap.sources.push(SourceStatus::failed(name, err, 3000));
                false
            }
            None => {
                snap.sources.push(SourceStatus::ok(name, ok_ms));
                true
            }
        }
    }
}

pub(super) fn event_active(clock: &Clock, ev: &scenario::Event, t: f64) -> bool {
    let from = clock.at(&ev.at);
    let to = ev
        .until
        .as_ref()
        .map(|u| clock.at(u))
        .unwrap_or(f64::INFINITY);
    from <= t && t < to
}

/// The snapshot of `node` at `t`.
pub(super) fn node_snapshot(s: &Scenario, node: &NodeSpec, st: &mut NodeState, t: f64) -> Snapshot {
    let clock = st.clock;
    let mut snap = Snapshot::new(&s.scenario.fleet, &node.name, ts(t));
    snap.role = node.role.clone();
    snap.interval_s = Some(s.scenario.interval.0.round() as u64);
    snap.collect_duration_ms = 800
        + (unit_noise(hash(&[node.name.as_bytes(), &(t as i64).to_le_bytes()])).abs() * 1500.0)
            as u64;
    let reboots: Vec<f64> = node
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Reboot)
        .map(|e| clock.at(&e.at))
        .collect();
    let boot = reboots.iter().copied().filter(|r| *r <= t).fold(
        node.booted
            .as_ref()
            .map(|b| clock.at(b))
            .unwrap_or(st.t0 - 3.0 * 86400.0),
        f64::max,
    );
    let mut cap = Capture {
        node,
        clock,
        t,
        reboots,
        boot,
        window_start: st.last_capture.unwrap_or(t - s.scenario.interval.0),
        containers_down: false,
    };
    if let Some(dark) = cap.active(EventKind::Dark) {
        let err = dark
            .error
            .clone()
            .unwrap_or_else(|| "connection timed out".into());
        for name in source_names(node) {
            snap.sources
                .push(SourceStatus::failed(&name, err.clone(), 5000));
        }
        // Trajectories keep moving while nobody looks.
        advance_all(node, st, t, &cap.reboots);
        return snap;
    }
    cap.containers_down = cap.active(EventKind::ContainersDown).is_some();

    if node.ssh {
        cap.status(&mut snap, "ssh", 600);
    }
    if let Some(hs) = &node.host {
        host(&cap, hs, st, &mut snap);
    }
    if !node.container.is_empty() || !node.ephemeral.is_empty() || node.docker.is_some() {
        docker(&cap, st, &mut snap);
    }
    if !node.gpu.is_empty() {
        gpus(&cap, st, &mut snap);
    }
    postgres(&cap, st, &mut snap);
    redis(&cap, st, &mut snap);
    rabbitmq(&cap, st, &mut snap);
    endpoints(&cap, st, &mut snap);
    work_queues(&cap, st, &mut snap);
    jobs(&cap, &mut snap);
    entities(&cap, &mut snap);
    snap
}

/// Memory, swap, load, clock and disks; with the containers down the host answers with every
/// reading null.
fn host(cap: &Capture, hs: &HostSpec, st: &mut NodeState, snap: &mut Snapshot) {
    let (t, reboots) = (cap.t, cap.reboots.as_slice());
    let ok = cap.status(snap, "host", 40);
    let mut host = Host {
        hostname: Some(cap.node.name.clone()),
        cpu_count: hs.cpus,
        ntp_synced: hs.ntp_synced,
        ..Host::default()
    };
    let v_avail = st.sample("host.mem_available", &hs.mem_available, t, reboots);
    let v_free = hs
        .mem_free
        .as_ref()
        .and_then(|tr| st.sample("host.mem_free", tr, t, reboots));
    let v_swap = hs
        .swap_used
        .as_ref()
        .and_then(|tr| st.sample("host.swap_used", tr, t, &[]));
    let v_cached = hs
        .swap_cached
        .as_ref()
        .and_then(|tr| st.sample("host.swap_cached", tr, t, &[]));
    let v_steal = hs
        .cpu_steal_pct
        .as_ref()
        .and_then(|tr| st.sample("host.steal", tr, t, &[]));
    let v_load = hs
        .load1
        .as_ref()
        .and_then(|tr| st.sample("host.load1", tr, t, &[]));
    let v_offset = hs
        .clock_offset_ms
        .as_ref()
        .and_then(|tr| st.sample("host.clock_offset", tr, t, &[]));
    let mut disks = Vec::new();
    for d in &hs.disks {
        let used = st.sample(&format!("disk.{}", d.mount), &d.used, t, &[]);
        disks.push(Disk {
            mount: d.mount.clone(),
            fs_type: Some("ext4".into()),
            size_bytes: Some(d.size.0 as u64),
            used_bytes: u(used),
            used_pct: used.map(|x| (x / d.size.0 * 1000.0).round() / 10.0),
        });
    }
    if ok && !cap.containers_down {
        let uptime = (t - cap.boot).max(0.0) as u64;
        host.uptime_s = Some(uptime);
        host.boot_time = Some(ts(cap.boot.floor()));
        host.mem_total_bytes = Some(hs.mem_total.0 as u64);
        host.mem_available_bytes = u(v_avail);
        host.mem_free_bytes = u(v_free);
        host.swap_total_bytes = hs.swap_total.as_ref().map(|q| q.0 as u64);
        host.swap_used_bytes = u(v_swap);
        host.swap_cached_bytes = u(v_cached);
        host.cpu_steal_pct = v_steal;
        host.load1 = v_load;
        host.clock_offset_ms = v_offset;
        host.disks = disks;
        snap.host = Some(host);
    } else if ok {
        // Answering, but every reading null: the F47 "fully dark" node.
        host.disks = disks
            .into_iter()
            .map(|d| Disk {
                size_bytes: None,
                used_bytes: None,
                used_pct: None,
                ..d
            })
            .collect();
        snap.host = Some(host);
    }
}

/// GPU telemetry; it reads null while the containers that feed the exporter are down.
fn gpus(cap: &Capture, st: &mut NodeState, snap: &mut Snapshot) {
    let t = cap.t;
    let ok = cap.status(snap, "gpu", 120);
    let mut gpus = Vec::new();
    for g in &cap.node.gpu {
        let key = format!("gpu{}", g.index);
        let util = st.sample(&format!("{key}.util"), &g.util_pct, t, &[]);
        let mem = st.sample(&format!("{key}.mem"), &g.mem_used_pct, t, &[]);
        let temp = st.sample(&format!("{key}.temp"), &g.temp_c, t, &[]);
        let fan = g
            .fan_pct
            .as_ref()
            .and_then(|tr| st.sample(&format!("{key}.fan"), tr, t, &[]));
        let total = g.mem_total.as_ref().map(|q| q.0);
        let null_all = cap.containers_down;
        gpus.push(Gpu {
            index: g.index,
            name: g.name.clone(),
            util_pct: util.filter(|_| !null_all),
            mem_used_pct: mem.filter(|_| !null_all),
            mem_used_bytes: match (mem, total) {
                (Some(p), Some(tot)) if !null_all => Some((p / 100.0 * tot).round() as u64),
                _ => None,
            },
            mem_total_bytes: total.map(|x| x as u64),
            temp_c: temp.filter(|_| !null_all),
            fan_pct: fan.filter(|_| !null_all),
            exporter: g.exporter.clone(),
        });
    }
    if ok {
        snap.gpus = Some(gpus);
    }
}

/// Every source a capture of `node` asks, in the order a capture asks them.
fn source_names(node: &NodeSpec) -> Vec<String> {
    let mut names = Vec::new();
    if node.ssh {
        names.push("ssh".to_string());
    }
    if node.host.is_some() {
        names.push("host".to_string());
    }
    if !node.container.is_empty() || !node.ephemeral.is_empty() || node.docker.is_some() {
        names.push("docker".to_string());
    }
    if !node.gpu.is_empty() {
        names.push("gpu".to_string());
    }
    names.extend(node.postgres.iter().map(|p| format!("postgres:{}", p.name)));
    names.extend(node.redis.iter().map(|r| format!("redis:{}", r.name)));
    names.extend(node.rabbitmq.iter().map(|r| format!("rabbitmq:{}", r.name)));
    names.extend(node.endpoint.iter().map(|e| format!("http:{}", e.name)));
    names
}

/// Keeps trajectories moving through a dark capture so the next visible value is right.
fn advance_all(node: &NodeSpec, st: &mut NodeState, t: f64, reboots: &[f64]) {
    for c in &node.container {
        let key = format!("c.{}", c.name);
        st.sample(&format!("{key}.mem"), &c.mem, t, reboots);
        if let Some(cpu) = &c.cpu {
            st.sample(&format!("{key}.cpu"), cpu, t, reboots);
        }
    }
    for g in &node.gpu {
        let key = format!("gpu{}", g.index);
        st.sample(&format!("{key}.temp"), &g.temp_c, t, &[]);
        st.sample(&format!("{key}.mem"), &g.mem_used_pct, t, &[]);
        st.sample(&format!("{key}.util"), &g.util_pct, t, &[]);
    }
}
