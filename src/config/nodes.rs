//! `[[node]]`: each node's name, checked, and its sources, one table each, read in one fixed
//! order. The source types live here; each table's reader lives with its kind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tls::{SslMode, TlsOptions};
use crate::tomlread::{Ctx, Fields, Spanned};
use crate::units::DurationRange;

use super::docker::{self, DockerEndpoint};
use super::services::{self, WatchKey};
use super::ssh::{self, SshSettings};
use super::values::{Secret, duration};

#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub role: Option<String>,
    pub address: Option<String>,
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// This machine's /proc.
    Host,
    Docker {
        endpoint: DockerEndpoint,
        logs: bool,
        ssh: Option<SshSettings>,
        /// The engine's socket on the node, for ssh:// endpoints.
        remote_socket: PathBuf,
        timeout: Duration,
        /// Time between two listings with writable-layer sizes (slow on big layers).
        size_every: Duration,
    },
    Prometheus {
        url: String,
        /// node-exporter's `instance` label for this node.
        instance: Option<String>,
        gpu: bool,
        queries: BTreeMap<String, String>,
        timeout: Duration,
        tls: TlsOptions,
    },
    Postgres {
        name: String,
        host: String,
        port: u16,
        user: String,
        database: String,
        password: Option<Secret>,
        log: bool,
        timeout: Duration,
        sslmode: SslMode,
        tls: TlsOptions,
    },
    Redis {
        name: String,
        host: String,
        port: u16,
        password: Option<Secret>,
        watch: Vec<WatchKey>,
        timeout: Duration,
    },
    RabbitMq {
        name: String,
        url: String,
        user: String,
        password: Option<Secret>,
        timeout: Duration,
        tls: TlsOptions,
    },
    Http {
        name: String,
        url: String,
        timeout: Duration,
        tls: TlsOptions,
    },
    Ssh {
        settings: SshSettings,
        commands: Vec<String>,
        timeout: Duration,
    },
}

impl Source {
    /// The name this source has in a snapshot's `sources`.
    pub fn name(&self) -> String {
        match self {
            Source::Host => "host".into(),
            Source::Docker { .. } => "docker".into(),
            Source::Prometheus { .. } => "prometheus".into(),
            Source::Postgres { name, .. } => format!("postgres:{name}"),
            Source::Redis { name, .. } => format!("redis:{name}"),
            Source::RabbitMq { name, .. } => format!("rabbitmq:{name}"),
            Source::Http { name, .. } => format!("http:{name}"),
            Source::Ssh { .. } => "ssh".into(),
        }
    }

    pub fn timeout(&self, default: Duration) -> Duration {
        match self {
            Source::Host => default,
            Source::Docker { timeout, .. }
            | Source::Prometheus { timeout, .. }
            | Source::Postgres { timeout, .. }
            | Source::Redis { timeout, .. }
            | Source::RabbitMq { timeout, .. }
            | Source::Http { timeout, .. }
            | Source::Ssh { timeout, .. } => *timeout,
        }
    }
}

/// What every source table of one node is read with.
pub(super) struct NodeScope<'a> {
    /// "node `name`": how messages about this node begin.
    pub what: String,
    /// The config's directory: relative paths in the node are its.
    pub base: &'a Path,
    /// The fleet's `timeout`: a source's own, unless it sets one.
    default_timeout: Duration,
    /// `kind:name` of every named source read so far.
    seen: BTreeSet<String>,
}

impl NodeScope<'_> {
    /// A source's `timeout`, the fleet's by default.
    pub fn timeout(&self, f: &mut Fields, ctx: &mut Ctx) -> Duration {
        duration(
            f,
            ctx,
            "timeout",
            self.default_timeout,
            DurationRange::TIMEOUT,
        )
    }

    /// The required `name` of a source of which a node may have several. Two of one kind with
    /// one name would share a snapshot entry and overwrite each other, so that is refused.
    pub fn source_name(
        &mut self,
        f: &mut Fields,
        ctx: &mut Ctx,
        kind: &str,
    ) -> Option<Spanned<String>> {
        let name = f.string(ctx, "name", true)?;
        if !self.seen.insert(format!("{kind}:{}", name.get_ref())) {
            ctx.report(
                name.span(),
                format!(
                    "{}: a {kind} source named `{}` is already defined in this node",
                    f.what,
                    name.get_ref()
                ),
            );
        }
        Some(name)
    }
}

/// Every `[[node]]`, in the config's order; one without a name is said and skipped.
pub(super) fn nodes(
    f: &mut Fields,
    ctx: &mut Ctx,
    base: &Path,
    default_timeout: Duration,
) -> Vec<NodeConfig> {
    let mut nodes = Vec::new();
    let mut names = BTreeSet::new();
    for (table, span) in f.tables(ctx, "node") {
        let mut n = Fields::new(table, span.clone(), "[[node]]");
        let Some(name) = n.string(ctx, "name", true) else {
            continue;
        };
        n.what = format!("node `{}`", name.get_ref());
        if let Err(e) = crate::model::validate_node_name(name.get_ref()) {
            ctx.report(name.span(), e);
        }
        if !names.insert(name.get_ref().clone()) {
            ctx.report(
                name.span(),
                format!("node `{}` is defined twice", name.get_ref()),
            );
        }
        let role = n.string(ctx, "role", false).map(|s| s.into_inner());
        let address = n.string(ctx, "address", false).map(|s| s.into_inner());
        let mut scope = NodeScope {
            what: n.what.clone(),
            base,
            default_timeout,
            seen: BTreeSet::new(),
        };
        let sources = node_sources(&mut n, ctx, &mut scope);
        n.finish(ctx);
        nodes.push(NodeConfig {
            name: name.into_inner(),
            role,
            address,
            sources,
        });
    }
    nodes
}

/// The reader of a source table a node may repeat (`[[postgres]]`, …).
type RepeatedSource = fn(&mut Fields, &mut Ctx, &mut NodeScope) -> Option<Source>;

/// A node's sources in a fixed order, whatever order the file has them in: host, ssh, docker,
/// prometheus, then every postgres, redis, rabbitmq and http table (each kind as written).
fn node_sources(n: &mut Fields, ctx: &mut Ctx, node: &mut NodeScope) -> Vec<Source> {
    let mut out = Vec::new();
    if let Some(h) = n.table(ctx, "host", &format!("{} [host]", node.what)) {
        out.push(Source::Host);
        h.finish(ctx);
    }
    // Docker over ssh:// reuses the node's ssh settings (identity, known hosts, port).
    let mut node_ssh = None;
    if let Some(mut s) = n.table(ctx, "ssh", &format!("{} [ssh]", node.what)) {
        if let Some(source) = ssh::source(&mut s, ctx, node) {
            if let Source::Ssh { settings, .. } = &source {
                node_ssh = Some(settings.clone());
            }
            out.push(source);
        }
        s.finish(ctx);
    }
    if let Some(mut d) = n.table(ctx, "docker", &format!("{} [docker]", node.what)) {
        out.extend(docker::source(&mut d, ctx, node, node_ssh.as_ref()));
        d.finish(ctx);
    }
    if let Some(mut p) = n.table(ctx, "prometheus", &format!("{} [prometheus]", node.what)) {
        out.extend(services::prometheus(&mut p, ctx, node));
        p.finish(ctx);
    }
    let repeated: [(&str, RepeatedSource); 4] = [
        ("postgres", services::postgres),
        ("redis", services::redis),
        ("rabbitmq", services::rabbitmq),
        ("http", services::http),
    ];
    for (kind, read) in repeated {
        for (table, span) in n.tables(ctx, kind) {
            let mut f = Fields::new(table, span, format!("{} [[{kind}]]", node.what));
            out.extend(read(&mut f, ctx, node));
            f.finish(ctx);
        }
    }
    out
}
