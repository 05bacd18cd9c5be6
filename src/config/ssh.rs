//! `[ssh]` of a node: how the system `ssh` reaches it, for the ssh commands and for `ssh://`
//! Docker endpoints, with the destination checked so it can never be read as an option.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tomlread::{Ctx, Fields};
use crate::units::DurationRange;

use super::nodes::{NodeScope, Source};
use super::values::{duration, port};

/// How `ssh` reaches a node: used for ssh commands and ssh:// Docker endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SshSettings {
    pub target: String,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub strict_host_key_checking: bool,
    pub connect_timeout: Duration,
}

pub const SSH_COMMANDS: &[&str] = &["uptime", "compose", "nvidia-smi", "timedatectl"];

/// Why an ssh destination is refused, if it is: one starting with `-` would be read by ssh as
/// an option (`-oProxyCommand=…` runs a command), and blanks or control characters are never
/// part of a host.
pub fn ssh_target_problem(target: &str) -> Option<String> {
    if target.is_empty() {
        Some("the ssh target is empty".into())
    } else if target.starts_with('-') {
        Some(format!(
            "the ssh target `{target}` starts with `-`, which ssh would read as an option"
        ))
    } else if target.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("the ssh target holds a blank or a control character".into())
    } else {
        None
    }
}

pub(super) fn ssh_settings(
    f: &mut Fields,
    ctx: &mut Ctx,
    base: &Path,
    target: String,
) -> SshSettings {
    let port = port(f, ctx, "port");
    let identity = f
        .string(ctx, "identity", false)
        .map(|s| base.join(s.into_inner()));
    let known_hosts = f
        .string(ctx, "known_hosts", false)
        .map(|s| base.join(s.into_inner()));
    let strict_host_key_checking = f.boolean(ctx, "strict_host_key_checking").unwrap_or(true);
    let connect_timeout = duration(
        f,
        ctx,
        "connect_timeout",
        Duration::from_secs(5),
        DurationRange::TIMEOUT,
    );
    SshSettings {
        target,
        port,
        identity,
        known_hosts,
        strict_host_key_checking,
        connect_timeout,
    }
}

/// `[ssh]`: the commands run over ssh, or None when the target is missing or refused (said).
pub(super) fn source(s: &mut Fields, ctx: &mut Ctx, node: &NodeScope) -> Option<Source> {
    let target = s.string(ctx, "target", true).filter(|t| {
        let problem = ssh_target_problem(t.get_ref());
        if let Some(m) = &problem {
            ctx.report(t.span(), format!("{} [ssh]: {m}", node.what));
        }
        problem.is_none()
    });
    // Read whether the target is good or not, so every other mistake is reported too.
    let settings = ssh_settings(s, ctx, node.base, String::new());
    let settings = SshSettings {
        target: target?.into_inner(),
        ..settings
    };
    let commands = commands(s, ctx, &node.what);
    let timeout = node.timeout(s, ctx);
    Some(Source::Ssh {
        settings,
        commands,
        timeout,
    })
}

/// `commands`: each one of [`SSH_COMMANDS`]; all of them when the key is absent.
fn commands(s: &mut Fields, ctx: &mut Ctx, node_what: &str) -> Vec<String> {
    let Some(listed) = s.strings(ctx, "commands") else {
        return SSH_COMMANDS.iter().map(|c| c.to_string()).collect();
    };
    listed
        .into_iter()
        .filter_map(|c| {
            if SSH_COMMANDS.contains(&c.get_ref().as_str()) {
                Some(c.into_inner())
            } else {
                ctx.report(
                    c.span(),
                    format!(
                        "{node_what} [ssh]: unknown command `{}` (known: {})",
                        c.get_ref(),
                        SSH_COMMANDS.join(", ")
                    ),
                );
                None
            }
        })
        .collect()
}
