//! `[docker]` of a node: the engine's endpoint (a socket, TCP, or ssh), checked at load rather
//! than at the first capture, and how often container sizes are listed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tomlread::{Ctx, Fields};
use crate::units::DurationRange;

use super::nodes::{NodeScope, Source};
use super::ssh::{SshSettings, ssh_target_problem};
use super::values::duration;

/// Default time between two listings with writable-layer sizes.
pub const DEFAULT_SIZE_EVERY: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub enum DockerEndpoint {
    Unix(PathBuf),
    /// host:port of an engine listening on TCP (plain HTTP).
    Tcp(String),
    /// `ssh://[user@]host[:port]`: the remote engine's socket forwarded by the system ssh.
    Ssh {
        target: String,
        port: Option<u16>,
    },
}

impl DockerEndpoint {
    pub fn describe(&self) -> String {
        match self {
            DockerEndpoint::Unix(p) => format!("unix://{}", p.display()),
            DockerEndpoint::Tcp(h) => format!("tcp://{h}"),
            DockerEndpoint::Ssh { target, port } => match port {
                Some(p) => format!("ssh://{target}:{p}"),
                None => format!("ssh://{target}"),
            },
        }
    }

    /// Checks the syntax too (a path, a host and port, an ssh destination), so a mistake is
    /// reported at load rather than at the first capture.
    pub fn parse(text: &str) -> std::result::Result<DockerEndpoint, String> {
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("`{text}`: `{p}` is not a port from 1 to 65535")),
        };
        if let Some(p) = text.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("`{text}`: unix:// needs the socket's path"));
            }
            Ok(DockerEndpoint::Unix(p.into()))
        } else if let Some(h) = text.strip_prefix("tcp://") {
            let h = h.trim_end_matches('/');
            match h.rsplit_once(':') {
                Some((host, p))
                    if !host.is_empty()
                        && !host.contains(['/', '@', ' '])
                        // An IPv6 address in brackets, whole: `[::1]`, not `[::1`.
                        && (host.starts_with('[') == host.ends_with(']'))
                        && (!host.starts_with('[')
                            || host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok())
                        && !p.is_empty()
                        && p.chars().all(|c| c.is_ascii_digit()) =>
                {
                    port(p)?;
                    Ok(DockerEndpoint::Tcp(h.to_string()))
                }
                _ => Err(format!(
                    "`{text}`: tcp:// needs host:port (e.g. tcp://10.0.0.1:2375)"
                )),
            }
        } else if let Some(rest) = text.strip_prefix("ssh://") {
            let rest = rest.trim_end_matches('/');
            let (target, port) = match rest.rsplit_once(':') {
                Some((t, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                    (t.to_string(), Some(port(p)?))
                }
                _ => (rest.to_string(), None),
            };
            if let Some(m) = ssh_target_problem(&target) {
                return Err(format!("`{text}`: {m}"));
            }
            Ok(DockerEndpoint::Ssh { target, port })
        } else {
            Err(format!(
                "`{text}` is not a Docker endpoint: use unix:///path, tcp://host:port or ssh://user@host"
            ))
        }
    }
}

/// `[docker]`, or None when the endpoint is missing or wrong (said). An `ssh://` endpoint uses
/// the node's `[ssh]` settings, when there are some, with the endpoint's own target.
pub(super) fn source(
    d: &mut Fields,
    ctx: &mut Ctx,
    node: &NodeScope,
    node_ssh: Option<&SshSettings>,
) -> Option<Source> {
    let endpoint =
        d.string(ctx, "endpoint", true)
            .and_then(|e| match DockerEndpoint::parse(e.get_ref()) {
                Ok(ep) => Some(ep),
                Err(m) => {
                    ctx.report(e.span(), format!("{} [docker]: {m}", node.what));
                    None
                }
            });
    let logs = d.boolean(ctx, "logs").unwrap_or(true);
    let remote_socket = d
        .string(ctx, "remote_socket", false)
        .map(|s| PathBuf::from(s.into_inner()))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
    let timeout = node.timeout(d, ctx);
    let size_every = duration(
        d,
        ctx,
        "size_every",
        DEFAULT_SIZE_EVERY,
        DurationRange::SPAN,
    );
    let endpoint = endpoint?;
    let ssh = match &endpoint {
        DockerEndpoint::Ssh { target, port } => Some(ssh_for_endpoint(target, *port, node_ssh)),
        _ => None,
    };
    Some(Source::Docker {
        endpoint: relative_to(node.base, endpoint),
        logs,
        ssh,
        remote_socket,
        timeout,
        size_every,
    })
}

/// The settings an `ssh://` endpoint connects with: the node's `[ssh]` ones (its port unless the
/// endpoint names one), else ssh's own defaults.
fn ssh_for_endpoint(
    target: &str,
    port: Option<u16>,
    node_ssh: Option<&SshSettings>,
) -> SshSettings {
    match node_ssh {
        Some(s) => SshSettings {
            target: target.to_string(),
            port: port.or(s.port),
            ..s.clone()
        },
        None => SshSettings {
            target: target.to_string(),
            port,
            identity: None,
            known_hosts: None,
            strict_host_key_checking: true,
            connect_timeout: Duration::from_secs(5),
        },
    }
}

/// A relative socket path is relative to the config file, like every other path.
fn relative_to(base: &Path, endpoint: DockerEndpoint) -> DockerEndpoint {
    match endpoint {
        DockerEndpoint::Unix(p) if p.is_relative() => DockerEndpoint::Unix(base.join(p)),
        other => other,
    }
}
