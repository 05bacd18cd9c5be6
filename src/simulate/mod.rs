//! The scenario simulator: turns a declarative scenario into the snapshots a real fleet would
//! have produced, capture by capture. The demo fleet, the rule fixtures and the benchmarks are
//! all scenarios, and so is any fleet a user wants to test a rule against before trusting it.
//!
//! Same scenario and seed, same snapshots, byte for byte: randomness comes from a stable hash
//! of (seed, node, series, time), never from a global generator or map order.

pub mod scenario;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::logtemplate;
use crate::model::{
    Container, ContainerState, DatabaseSize, Disk, DockerInfo, Endpoint, Gpu, Health, Host,
    LogStream, LogTemplate, Port, Postgres, Queue, RabbitMq, Redis, RedisDb, Snapshot,
    SourceStatus, WatchedKey, validate_node_name,
};
use crate::model::{CronJob, Entity, WorkQueue};
use scenario::{Dim, EventKind, LogSpec, NodeSpec, Scenario, Span, TimeSpec, Traj};

/// Reads and checks a scenario file; mistakes come back with line and column.
pub fn load(path: &Path) -> Result<Scenario> {
    let text = crate::fsutil::read_to_string(path)?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Scenario> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        Error::bad_file(
            path,
            format!("line {line}, column {col}: {}", e.message().trim()),
        )
    })?;
    let problems = scenario::check(text, &scenario);
    if !problems.is_empty() {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            problems,
        });
    }
    for node in expand_nodes(&scenario) {
        validate_node_name(&node.name).map_err(|m| Error::bad_file(path, m))?;
        for ev in &node.events {
            let needs = match ev.kind {
                EventKind::SourceDown => ev.source.is_none().then_some("source"),
                EventKind::Restart => ev.container.is_none().then_some("container"),
                _ => None,
            };
            if let Some(field) = needs {
                return Err(Error::bad_file(
                    path,
                    format!("node {}: a {:?} event needs `{field}`", node.name, ev.kind),
                ));
            }
        }
    }
    if scenario.scenario.interval.0 < 1.0 {
        return Err(Error::bad_file(
            path,
            "scenario.interval must be at least 1s",
        ));
    }
    Ok(scenario)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    (line, col)
}

/// Nodes written out plus nodes stamped from templates.
pub fn expand_nodes(s: &Scenario) -> Vec<NodeSpec> {
    let mut nodes = s.node.clone();
    for t in &s.node_template {
        let width = t.count.to_string().len().max(3);
        for i in 1..=t.count {
            let mut n = t.node.clone();
            n.name = format!("{}{:0width$}", t.prefix, i);
            if let Some(first) = t.node.container.first() {
                for k in 1..=t.extra_containers {
                    let mut c = first.clone();
                    c.name = format!("{}-{k}", first.name);
                    n.container.push(c);
                }
            }
            nodes.push(n);
        }
    }
    nodes
}

/// FNV-1a over the parts: stable across platforms and Rust versions.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part.iter() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A uniform number in [-1, 1) from a hash (splitmix64 finaliser).
fn unit_noise(h: u64) -> f64 {
    let mut z = h.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

struct Clock {
    tz: Tz,
    start: DateTime<Utc>,
}

impl Clock {
    fn at(&self, t: &TimeSpec) -> f64 {
        t.resolve(self.tz, self.start).timestamp() as f64
    }
    fn active(&self, spans: &[Span], t: f64) -> bool {
        spans
            .iter()
            .any(|s| self.at(&s.from) <= t && t < self.at(&s.to))
    }
}

/// The running state of one trajectory.
struct TrajState {
    t: f64,
    value: f64,
    rate: f64,
    noise: f64,
    null: bool,
    steps: Vec<(f64, usize)>,
    next: usize,
}

impl TrajState {
    fn new<D: Dim>(traj: &Traj<D>, clock: &Clock, t0: f64) -> Self {
        let mut steps: Vec<(f64, usize)> = traj
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (clock.at(&s.at), i))
            .collect();
        steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        TrajState {
            t: t0,
            value: traj.start,
            rate: traj.rate,
            noise: traj.noise,
            null: traj.null,
            steps,
            next: 0,
        }
    }

    /// Moves the state to time `to`, applying steps and resets (reboots, restarts) on the way.
    fn advance<D: Dim>(&mut self, traj: &Traj<D>, to: f64, resets: &[f64]) {
        loop {
            let step_t = self.steps.get(self.next).map(|s| s.0).filter(|t| *t <= to);
            let reset_t = resets.iter().copied().find(|r| *r > self.t && *r <= to);
            let (event_t, is_reset) = match (step_t, reset_t) {
                (Some(s), Some(r)) if r < s => (r, true),
                (Some(s), _) => (s, false),
                (None, Some(r)) => (r, true),
                (None, None) => break,
            };
            if event_t > self.t {
                self.value += self.rate * (event_t - self.t);
                self.t = event_t;
            }
            if is_reset {
                self.value = traj.reboot_to.unwrap_or(traj.start);
                self.rate = traj.rate;
                self.null = traj.null;
            } else {
                let (_, i) = self.steps[self.next];
                let step = &traj.steps[i];
                if let Some(v) = &step.set {
                    self.value = v.0;
                }
                if let Some(r) = &step.rate {
                    self.rate = r.0;
                }
                if let Some(n) = step.null {
                    self.null = n;
                }
                if let Some(n) = &step.noise {
                    self.noise = n.0;
                }
                self.next += 1;
            }
        }
        if to > self.t {
            self.value += self.rate * (to - self.t);
            self.t = to;
        }
    }
}

/// Every trajectory of a node, by a stable key.
struct NodeState<'s> {
    seed: u64,
    node: String,
    clock: &'s Clock,
    t0: f64,
    trajs: BTreeMap<String, TrajState>,
    totals: BTreeMap<String, f64>,
    last_capture: Option<f64>,
}

impl NodeState<'_> {
    fn sample<D: Dim>(&mut self, key: &str, traj: &Traj<D>, t: f64, resets: &[f64]) -> Option<f64> {
        let (clock, t0) = (self.clock, self.t0);
        let st = self
            .trajs
            .entry(key.to_string())
            .or_insert_with(|| TrajState::new(traj, clock, t0));
        st.advance(traj, t, resets);
        if st.null {
            return None;
        }
        let mut v = st.value;
        if let Some(osc) = &traj.oscillate {
            let phase = ((t - t0) / osc.period.0).rem_euclid(1.0);
            v += osc.amplitude.0
                * match osc.shape.as_str() {
                    "sawtooth" => 2.0 * phase - 1.0,
                    "square" => {
                        if phase < 0.5 {
                            1.0
                        } else {
                            -1.0
                        }
                    }
                    _ => (phase * std::f64::consts::TAU).sin(),
                };
        }
        if st.noise > 0.0 {
            let h = hash(&[
                &self.seed.to_le_bytes(),
                self.node.as_bytes(),
                key.as_bytes(),
                &(t as i64).to_le_bytes(),
            ]);
            v += st.noise * unit_noise(h);
        }
        let min = traj.min.or(if D::DIM == crate::units::Dimension::Bytes {
            Some(0.0)
        } else {
            None
        });
        if let Some(m) = min {
            v = v.max(m);
        }
        if let Some(m) = traj.max {
            v = v.min(m);
        }
        let decimals = traj
            .decimals
            .unwrap_or(if D::DIM == crate::units::Dimension::Bytes {
                0
            } else {
                2
            });
        let f = 10f64.powi(decimals as i32);
        Some((v * f).round() / f)
    }

    /// Integrates a per-second rate into a running total.
    fn total<D: Dim>(&mut self, key: &str, rate: &Traj<D>, t: f64, resets: &[f64]) -> Option<u64> {
        let r = self.sample(&format!("{key}#rate"), rate, t, resets)?;
        let dt = self.last_capture.map(|l| t - l).unwrap_or(0.0);
        let total = self.totals.entry(key.to_string()).or_insert(0.0);
        *total += r.max(0.0) * dt;
        Some(total.round() as u64)
    }
}

fn ts(t: f64) -> DateTime<Utc> {
    Utc.timestamp_opt(t.floor() as i64, ((t.fract()) * 1e9) as u32)
        .single()
        .unwrap_or_default()
}

fn u(v: Option<f64>) -> Option<u64> {
    v.map(|x| x.max(0.0).round() as u64)
}

/// Capture round times of the whole fleet (before per-node jitter).
fn round_times(s: &Scenario, clock: &Clock) -> Vec<f64> {
    let h = &s.scenario;
    let (start, end) = (clock.at(&h.start), clock.at(&h.end));
    let mut out = Vec::new();
    let mut t = start;
    while t <= end {
        if !clock.active(&h.gaps, t) {
            out.push(t);
        }
        t += h.interval.0;
    }
    for extra in &h.extra_captures {
        out.push(clock.at(extra));
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

/// Builds every snapshot of the scenario, oldest first (then by node).
pub fn generate(s: &Scenario) -> Result<Vec<Snapshot>> {
    let mut out = Vec::new();
    generate_each(s, |snap| out.push(snap))?;
    out.sort_by(|a, b| {
        a.captured_at
            .cmp(&b.captured_at)
            .then_with(|| a.node.cmp(&b.node))
    });
    Ok(out)
}

/// Builds the snapshots node by node (each node's oldest first) and hands each to `emit`, so a
/// large fleet need not be held in memory.
pub fn generate_each(s: &Scenario, mut emit: impl FnMut(Snapshot)) -> Result<()> {
    let h = &s.scenario;
    let start = h.start.resolve(h.timezone.0, Utc::now());
    let clock = Clock {
        tz: h.timezone.0,
        start,
    };
    if clock.at(&h.end) < clock.at(&h.start) {
        return Err(Error::Usage("scenario.end is before scenario.start".into()));
    }
    let rounds = round_times(s, &clock);
    for (index, node) in expand_nodes(s).iter().enumerate() {
        let mut state = NodeState {
            seed: h.seed,
            node: node.name.clone(),
            clock: &clock,
            t0: clock.at(&h.start),
            trajs: BTreeMap::new(),
            totals: BTreeMap::new(),
            last_capture: None,
        };
        for round in &rounds {
            let jitter = if h.jitter.0 > 0.0 {
                let j = unit_noise(hash(&[
                    &h.seed.to_le_bytes(),
                    b"jitter",
                    node.name.as_bytes(),
                    &(*round as i64).to_le_bytes(),
                ]));
                ((j + 1.0) / 2.0 * h.jitter.0).floor()
            } else {
                0.0
            };
            let t = (round + jitter + (index % 30) as f64 * 2.0).floor();
            emit(node_snapshot(s, node, &mut state, t));
            state.last_capture = Some(t);
        }
    }
    Ok(())
}

fn event_active(clock: &Clock, ev: &scenario::Event, t: f64) -> bool {
    let from = clock.at(&ev.at);
    let to = ev
        .until
        .as_ref()
        .map(|u| clock.at(u))
        .unwrap_or(f64::INFINITY);
    from <= t && t < to
}

fn node_snapshot(s: &Scenario, node: &NodeSpec, st: &mut NodeState, t: f64) -> Snapshot {
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
    let active = |kind: EventKind| {
        node.events
            .iter()
            .find(|e| e.kind == kind && event_active(clock, e, t))
    };
    let source_down = |name: &str| {
        node.events.iter().find(|e| {
            e.kind == EventKind::SourceDown
                && e.source.as_deref() == Some(name)
                && event_active(clock, e, t)
        })
    };
    let window_start = st.last_capture.unwrap_or(t - s.scenario.interval.0);

    if let Some(dark) = active(EventKind::Dark) {
        let err = dark
            .error
            .clone()
            .unwrap_or_else(|| "connection timed out".into());
        for name in source_names(node) {
            snap.sources
                .push(SourceStatus::failed(&name, err.clone(), 5000));
        }
        // Trajectories keep moving while nobody looks.
        advance_all(node, st, t, &reboots);
        return snap;
    }
    let containers_down = active(EventKind::ContainersDown).is_some();

    let status = |snap: &mut Snapshot, name: &str, ok_ms: u64| -> bool {
        match source_down(name) {
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
    };

    if node.ssh {
        status(&mut snap, "ssh", 600);
    }
    if let Some(hs) = &node.host {
        let ok = status(&mut snap, "host", 40);
        let mut host = Host {
            hostname: Some(node.name.clone()),
            cpu_count: hs.cpus,
            ntp_synced: hs.ntp_synced,
            ..Host::default()
        };
        let v_avail = st.sample("host.mem_available", &hs.mem_available, t, &reboots);
        let v_free = hs
            .mem_free
            .as_ref()
            .and_then(|tr| st.sample("host.mem_free", tr, t, &reboots));
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
        if ok && !containers_down {
            let uptime = (t - boot).max(0.0) as u64;
            host.uptime_s = Some(uptime);
            host.boot_time = Some(ts(boot.floor()));
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
    if !node.container.is_empty() || node.docker.is_some() {
        let ok = status(&mut snap, "docker", 900);
        if ok {
            snap.docker = node.docker.as_ref().map(|d| DockerInfo {
                engine_version: d.engine_version.clone(),
                api_version: Some("1.47".into()),
                compose_version: d.compose_version.clone(),
            });
            let mut containers = Vec::new();
            for c in &node.container {
                let from = c.from.as_ref().map(|f| clock.at(f)).unwrap_or(f64::MIN);
                let until = c
                    .until
                    .as_ref()
                    .map(|f| clock.at(f))
                    .unwrap_or(f64::INFINITY);
                let present = !containers_down && from <= t && t < until;
                let restarts: Vec<f64> = node
                    .events
                    .iter()
                    .filter(|e| {
                        e.kind == EventKind::Restart && e.container.as_deref() == Some(&c.name)
                    })
                    .map(|e| clock.at(&e.at))
                    .collect();
                let mut resets: Vec<f64> = reboots.iter().chain(restarts.iter()).copied().collect();
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
                    continue;
                }
                let (mut image, mut tag, mut revision) =
                    (c.image.clone(), c.tag.clone(), c.revision.clone());
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
                let restart_count = restarts.iter().filter(|r| **r <= t).count() as u32;
                let started = restarts
                    .iter()
                    .copied()
                    .filter(|r| *r <= t)
                    .fold(from.max(boot + 25.0), f64::max);
                let state = match c.state.as_str() {
                    "exited" => ContainerState::Exited,
                    "restarting" => ContainerState::Restarting,
                    "paused" => ContainerState::Paused,
                    "created" => ContainerState::Created,
                    "dead" => ContainerState::Dead,
                    _ => ContainerState::Running,
                };
                let running = state == ContainerState::Running;
                containers.push(Container {
                    name: c.name.clone(),
                    id: Some(format!(
                        "{:012x}",
                        hash(&[node.name.as_bytes(), c.name.as_bytes()]) & 0xffff_ffff_ffff
                    )),
                    compose_project: c.compose_project.clone(),
                    compose_service: c.compose_project.as_ref().map(|_| c.name.clone()),
                    image,
                    tag,
                    image_id: None,
                    image_created: None,
                    revision,
                    state,
                    health: match c.health.as_deref() {
                        Some("healthy") => Health::Healthy,
                        Some("unhealthy") => Health::Unhealthy,
                        Some("starting") => Health::Starting,
                        _ => Health::None,
                    },
                    failing_streak: None,
                    health_log: Vec::new(),
                    restart_count: Some(restart_count),
                    restart_policy: c.restart_policy.clone(),
                    oom_killed: None,
                    exit_code: None,
                    started_at: Some(ts(started.floor())),
                    ports: c
                        .ports
                        .iter()
                        .map(|p| Port {
                            private: *p,
                            public: Some(*p),
                            ip: Some("0.0.0.0".into()),
                            proto: "tcp".into(),
                        })
                        .collect(),
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
                });
                if !c.log.is_empty() {
                    snap.logs.push(log_stream(
                        &c.log,
                        &format!("container:{}", c.name),
                        window_start,
                        t,
                        clock,
                        st.t0,
                    ));
                }
            }
            snap.containers = Some(containers);
        }
    }
    if !node.gpu.is_empty() {
        let ok = status(&mut snap, "gpu", 120);
        let mut gpus = Vec::new();
        for g in &node.gpu {
            let key = format!("gpu{}", g.index);
            let util = st.sample(&format!("{key}.util"), &g.util_pct, t, &[]);
            let mem = st.sample(&format!("{key}.mem"), &g.mem_used_pct, t, &[]);
            let temp = st.sample(&format!("{key}.temp"), &g.temp_c, t, &[]);
            let fan = g
                .fan_pct
                .as_ref()
                .and_then(|tr| st.sample(&format!("{key}.fan"), tr, t, &[]));
            let total = g.mem_total.as_ref().map(|q| q.0);
            let null_all = containers_down;
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
    for p in &node.postgres {
        let name = format!("postgres:{}", p.name);
        let conns = st.sample(&format!("{name}.conns"), &p.active_connections, t, &reboots);
        let inserted = p
            .insert_rate
            .as_ref()
            .and_then(|r| st.total(&format!("{name}.inserted"), r, t, &[]));
        let mut dbs = Vec::new();
        for db in &p.databases {
            let size = st.sample(&format!("{name}.db.{}", db.name), &db.size, t, &[]);
            dbs.push(DatabaseSize {
                name: db.name.clone(),
                size_bytes: u(size),
            });
        }
        if status(&mut snap, &name, 30) && !containers_down {
            snap.postgres.push(Postgres {
                name: p.name.clone(),
                port: p.port,
                version: p.version.clone(),
                active_connections: u(conns),
                databases: dbs,
                settings: p.settings.clone(),
                rows_inserted_total: inserted,
            });
            if !p.log.is_empty() {
                snap.logs
                    .push(log_stream(&p.log, &name, window_start, t, clock, st.t0));
            }
        }
    }
    for r in &node.redis {
        let name = format!("redis:{}", r.name);
        let used = r
            .used_memory
            .as_ref()
            .and_then(|tr| st.sample(&format!("{name}.used"), tr, t, &reboots));
        let mut dbs = Vec::new();
        for (idx, keys) in &r.dbs {
            let k = st.sample(&format!("{name}.db{idx}"), keys, t, &reboots);
            dbs.push(RedisDb {
                index: idx.parse().unwrap_or(0),
                keys: u(k),
            });
        }
        dbs.sort_by_key(|d| d.index);
        let watched = r
            .watched
            .iter()
            .map(|w| {
                let exists = !clock.active(&w.absent, t);
                WatchedKey {
                    db: w.db,
                    key: w.key.clone(),
                    exists,
                    kind: w.kind.clone(),
                    fields_missing: if exists {
                        w.fields
                            .iter()
                            .filter(|f| {
                                w.fields_absent
                                    .get(*f)
                                    .is_some_and(|spans| clock.active(spans, t))
                            })
                            .cloned()
                            .collect()
                    } else {
                        w.fields.clone()
                    },
                }
            })
            .collect();
        if status(&mut snap, &name, 10) && !containers_down {
            snap.redis.push(Redis {
                name: r.name.clone(),
                port: r.port,
                used_memory_bytes: u(used),
                dbs,
                watched,
            });
        }
    }
    for m in &node.rabbitmq {
        let name = format!("rabbitmq:{}", m.name);
        let mut queues = Vec::new();
        for q in &m.queues {
            let key = format!("{name}.{}", q.name);
            let ready = st.sample(&format!("{key}.ready"), &q.ready, t, &[]);
            let unacked = q
                .unacked
                .as_ref()
                .and_then(|tr| st.sample(&format!("{key}.unacked"), tr, t, &[]));
            let consumers = st.sample(&format!("{key}.consumers"), &q.consumers, t, &[]);
            let publish_total = q
                .publish_rate
                .as_ref()
                .and_then(|r| st.total(&format!("{key}.published"), r, t, &[]));
            let deliver_total = q
                .deliver_rate
                .as_ref()
                .and_then(|r| st.total(&format!("{key}.delivered"), r, t, &[]));
            let rate = |st: &mut NodeState, k: &str, tr: &Option<scenario::Plain>| {
                tr.as_ref()
                    .and_then(|tr| st.sample(&format!("{key}.{k}#rate"), tr, t, &[]))
            };
            queues.push(Queue {
                name: q.name.clone(),
                vhost: "/".into(),
                messages_ready: u(ready),
                messages_unacked: u(unacked).or(Some(0)),
                consumers: u(consumers),
                publish_total,
                deliver_total,
                redeliver_total: None,
                publish_rate: rate(st, "published", &q.publish_rate),
                deliver_rate: rate(st, "delivered", &q.deliver_rate),
                redeliver_rate: rate(st, "redelivered", &q.redeliver_rate),
            });
        }
        if status(&mut snap, &name, 60) {
            snap.rabbitmq.push(RabbitMq {
                name: m.name.clone(),
                version: m.version.clone(),
                queues,
            });
        }
    }
    for e in &node.endpoint {
        let name = format!("http:{}", e.name);
        let code = st.sample(&format!("{name}.status"), &e.status, t, &[]);
        let latency = e
            .latency_ms
            .as_ref()
            .and_then(|tr| st.sample(&format!("{name}.latency"), tr, t, &[]));
        status(&mut snap, &name, latency.map(|l| l as u64).unwrap_or(5));
        let code = code.map(|c| c.round() as u16).unwrap_or(0);
        snap.endpoints.push(Endpoint {
            name: e.name.clone(),
            url: e.url.clone(),
            status: code,
            latency_ms: if code == 0 { None } else { latency },
            error: (code == 0).then(|| "connection refused".to_string()),
        });
    }
    for q in &node.work_queue {
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
    for j in &node.job {
        let runs: Vec<f64> = j
            .runs
            .iter()
            .map(|r| st.clock.at(r))
            .filter(|r| *r <= t)
            .collect();
        let fail_from = j.failing_from.as_ref().map(|f| st.clock.at(f));
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
        snap.cron_jobs.push(CronJob {
            name: j.name.clone(),
            schedule: j.schedule.clone(),
            last_run: last.map(ts),
            last_success: last.map(|_| failures == 0),
            consecutive_failures: failures,
            outcome,
        });
    }
    for e in &node.entity {
        let created = st.clock.at(&e.created);
        if created > t {
            continue;
        }
        let promoted = e
            .promoted
            .as_ref()
            .map(|p| st.clock.at(p))
            .filter(|p| *p <= t);
        let terminated = e
            .terminated
            .as_ref()
            .map(|p| st.clock.at(p))
            .filter(|p| *p <= t);
        let status = if terminated.is_some() {
            "terminated"
        } else if promoted.is_some() {
            "active"
        } else {
            "starting"
        };
        snap.entities.push(Entity {
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
        });
    }
    snap
}

fn source_names(node: &NodeSpec) -> Vec<String> {
    let mut names = Vec::new();
    if node.ssh {
        names.push("ssh".to_string());
    }
    if node.host.is_some() {
        names.push("host".to_string());
    }
    if !node.container.is_empty() || node.docker.is_some() {
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

/// The templates a collector would have made of the lines written in `(from, to]`.
fn log_stream(
    specs: &[LogSpec],
    source: &str,
    from: f64,
    to: f64,
    clock: &Clock,
    t0: f64,
) -> LogStream {
    let mut templates: BTreeMap<(String, String), LogTemplate> = BTreeMap::new();
    let mut total = 0u64;
    for spec in specs {
        let every = spec.every.0.max(0.001);
        let origin = spec.from.as_ref().map(|f| clock.at(f)).unwrap_or(t0);
        let until = spec
            .until
            .as_ref()
            .map(|u| clock.at(u))
            .unwrap_or(f64::INFINITY);
        let lo = from.max(origin);
        let hi = to.min(until - 1e-9);
        if hi < lo {
            continue;
        }
        // Emissions at origin + k*every, k >= 0, within (lo, hi].
        let k_first = ((lo - origin) / every).floor() as i64 + 1;
        let k_first = if lo == origin && from < origin {
            0
        } else {
            k_first.max(0)
        };
        let k_last = ((hi - origin) / every).floor() as i64;
        if k_last < k_first {
            continue;
        }
        let count = (k_last - k_first + 1) as u64;
        total += count;
        let mut message = spec.message.clone();
        for (k, v) in &spec.fields {
            message = message.replace(&format!("{{{k}}}"), v);
        }
        let offset = spec.ts_offset.map(|o| o.0).unwrap_or(0.0);
        let at = |k: i64| origin + k as f64 * every + offset;
        let level = spec.level.clone().unwrap_or_else(|| "INFO".into());
        let template = logtemplate::mask(&message);
        let entry = templates
            .entry((template.clone(), level.clone()))
            .or_insert_with(|| LogTemplate {
                template,
                level: Some(level.clone()),
                count: 0,
                first_ts: None,
                last_ts: None,
                last_ts_raw: None,
                pids: Vec::new(),
                fields: BTreeMap::new(),
                samples: Vec::new(),
            });
        entry.count += count;
        let first = ts(at(k_first));
        let last = ts(at(k_last));
        entry.first_ts = Some(entry.first_ts.map_or(first, |f| f.min(first)));
        entry.last_ts = Some(entry.last_ts.map_or(last, |l| l.max(last)));
        entry.last_ts_raw = Some(last.format("%Y-%m-%d %H:%M:%S%.3f").to_string());
        if let Some(pid0) = spec.pid_start {
            let step = i64::from(spec.pid_step.unwrap_or(1));
            let pid = |k: i64| (i64::from(pid0) + k * step).rem_euclid(4_194_304) as u32;
            let mut ks: Vec<i64> = (k_first..=k_last.min(k_first + 2)).collect();
            ks.extend((k_last - 2).max(k_first + 3)..=k_last);
            entry.pids.extend(ks.into_iter().map(pid));
            entry.pids.sort_unstable();
            entry.pids.dedup();
        }
        for (field, value) in &spec.fields {
            *entry
                .fields
                .entry(field.clone())
                .or_default()
                .entry(value.clone())
                .or_default() += count;
        }
        for k in [k_first, k_last] {
            if entry.samples.len() < 3 {
                let line = format!(
                    "{} {} {}",
                    ts(at(k)).format("%Y-%m-%d %H:%M:%S%.3f"),
                    level,
                    message
                );
                if !entry.samples.contains(&line) {
                    entry.samples.push(line);
                }
            }
        }
    }
    LogStream {
        source: source.to_string(),
        window_start: ts(from),
        window_end: ts(to),
        lines_total: total,
        lines_dropped: 0,
        templates: templates.into_values().collect(),
        other: Default::default(),
        truncated: None,
    }
}
