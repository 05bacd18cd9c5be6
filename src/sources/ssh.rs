//! The system `ssh`, non-interactive: BatchMode, strict host key checking unless the config
//! turns it off, a connect timeout. Used to run probe commands on a node and to forward a
//! remote Docker socket. The system client honours ~/.ssh/config, agents and ProxyJump.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::config::SshSettings;

/// The common options, then the target.
pub fn base_args(s: &SshSettings) -> Vec<String> {
    let mut args = vec![
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", s.connect_timeout.as_secs().max(1)),
        "-o".into(),
        format!(
            "StrictHostKeyChecking={}",
            if s.strict_host_key_checking {
                "yes"
            } else {
                "accept-new"
            }
        ),
    ];
    if let Some(kh) = &s.known_hosts {
        args.push("-o".into());
        args.push(format!("UserKnownHostsFile={}", kh.display()));
    }
    if let Some(id) = &s.identity {
        args.push("-i".into());
        args.push(id.display().to_string());
        args.push("-o".into());
        args.push("IdentitiesOnly=yes".into());
    }
    if let Some(p) = s.port {
        args.push("-p".into());
        args.push(p.to_string());
    }
    args
}

/// Ends the options and names the destination: after `--`, a target can never be read as an
/// option (`-oProxyCommand=…`), whatever the config let through.
fn push_destination(args: &mut Vec<String>, s: &SshSettings) {
    args.push("--".into());
    args.push(s.target.clone());
}

/// The arguments that run `command` on the node.
pub fn run_args(s: &SshSettings, command: &str) -> Vec<String> {
    let mut args = base_args(s);
    push_destination(&mut args, s);
    args.push(command.to_string());
    args
}

/// The arguments that forward the remote socket `remote` to the local socket `local`.
pub fn tunnel_args(s: &SshSettings, local: &Path, remote: &Path) -> Vec<String> {
    let mut args = base_args(s);
    args.extend([
        "-N".into(),
        "-o".into(),
        "ExitOnForwardFailure=yes".into(),
        "-L".into(),
        format!("{}:{}", local.display(), remote.display()),
    ]);
    push_destination(&mut args, s);
    args
}

/// Runs `command` on the node and returns its standard output.
pub async fn run(s: &SshSettings, command: &str) -> Result<String, String> {
    let args = run_args(s, command);
    let out = Command::new("ssh")
        .args(&args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("ssh://{}: cannot run ssh: {e}", s.target))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "ssh://{}: `{command}` exited with {}: {}",
            s.target,
            out.status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "a signal".into()),
            err.trim()
        ))
    }
}

/// A remote unix socket forwarded to a local one for as long as this lives.
pub struct Tunnel {
    child: Child,
    pub local: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tunnel {
    pub async fn open(s: &SshSettings, remote: &Path) -> Result<Tunnel, String> {
        let dir = tempfile::Builder::new()
            .prefix("patrol-ssh-")
            .tempdir()
            .map_err(|e| format!("cannot make a directory for the ssh tunnel: {e}"))?;
        let local = dir.path().join("docker.sock");
        let args = tunnel_args(s, &local, remote);
        let mut child = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("ssh://{}: cannot run ssh: {e}", s.target))?;
        let deadline = Instant::now() + s.connect_timeout + Duration::from_secs(2);
        while !local.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                return Err(format!(
                    "ssh://{}: forwarding {} failed ({status}): {}",
                    s.target,
                    remote.display(),
                    err.trim()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "ssh://{}: the forwarded socket did not appear within {:?}",
                    s.target, s.connect_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Tunnel {
            child,
            local,
            _dir: dir,
        })
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What the probe commands said.
#[derive(Debug, Default)]
pub struct Probe {
    pub uptime_s: Option<u64>,
    /// Node clock minus this machine's, sampled mid-call (± half the round trip).
    pub clock_offset_ms: Option<f64>,
    pub round_trip_ms: f64,
    /// Per command other than uptime: its answer, its absence, or why it failed.
    pub compose_version: Option<Reply<String>>,
    pub gpus: Option<Reply<Vec<crate::model::Gpu>>>,
    pub ntp_synced: Option<Reply<bool>>,
}

/// One probe command's outcome. A tool the node does not have (no GPU, no compose plugin) is
/// not a fault: under cron it would otherwise be a "source failing" finding forever.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    Answered(T),
    NotInstalled,
    Failed(String),
}

impl<T> Reply<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        self.and_then(|v| Ok(f(v)))
    }

    fn and_then<U>(self, f: impl FnOnce(T) -> Result<U, String>) -> Reply<U> {
        match self {
            Reply::Answered(v) => match f(v) {
                Ok(u) => Reply::Answered(u),
                Err(e) => Reply::Failed(e),
            },
            Reply::NotInstalled => Reply::NotInstalled,
            Reply::Failed(e) => Reply::Failed(e),
        }
    }
}

/// What one section of the script says: exit code 127 (the shell found no such command),
/// docker's own words for a subcommand whose plugin is not installed, or timedatectl on a host
/// whose init is not systemd (OpenRC, a container: there is nothing for it to ask), read as "not
/// installed"; any other non-zero code is a failure of a tool that is there.
fn reply(name: &str, body: &str, rc: i32) -> Reply<String> {
    if rc == 0 {
        return Reply::Answered(body.to_string());
    }
    let missing = body.lines().any(|l| {
        let l = l.trim();
        l.ends_with("command not found")
            || l.ends_with(": not found")
            // docker ≥ 28 and older CLIs, when the compose plugin is not installed.
            || l.starts_with("docker: unknown command: docker ")
            || (l.starts_with("docker: '") && l.ends_with("' is not a docker command."))
            || l.starts_with("System has not been booted with systemd as init system")
    });
    if rc == 127 || (missing && rc != 126) {
        return Reply::NotInstalled;
    }
    Reply::Failed(format!(
        "`{name}` exited with {rc}: {}",
        body.lines().last().unwrap_or("")
    ))
}

/// `docker compose version`'s answer ("Docker Compose version v2.27.0", or a bare version).
fn compose_version(body: &str) -> Result<String, String> {
    body.lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.split_whitespace().last())
        .map(|v| format!("v{}", v.trim_start_matches('v')))
        .ok_or_else(|| "`docker compose version` said nothing".to_string())
}

fn script(commands: &[String]) -> String {
    let mut s = String::from("echo @@uptime; cat /proc/uptime && date +%s.%N; echo \"@@rc $?\"; ");
    for c in commands {
        let line = match c.as_str() {
            // Without `--short`: a CLI without the plugin then says so, instead of refusing the flag.
            "compose" => "docker compose version 2>&1",
            "nvidia-smi" => {
                "nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,fan.speed --format=csv,noheader,nounits 2>&1"
            }
            "timedatectl" => "timedatectl show -p NTPSynchronized --value 2>&1",
            _ => continue,
        };
        s.push_str(&format!("echo @@{c}; {line}; echo \"@@rc $?\"; "));
    }
    s
}

/// Splits the script's output into (command, output, exit code).
fn sections(out: &str) -> Vec<(String, String, i32)> {
    let mut result = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in out.lines() {
        if let Some(rc) = line.strip_prefix("@@rc ") {
            if let Some((name, body)) = current.take() {
                result.push((
                    name,
                    body.trim().to_string(),
                    rc.trim().parse().unwrap_or(-1),
                ));
            }
        } else if let Some(name) = line.strip_prefix("@@") {
            current = Some((name.to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    result
}

fn na(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok()
}

/// `nvidia-smi --format=csv,noheader,nounits` lines; "[N/A]" reads as null, as DCGM would.
pub fn parse_nvidia_smi(text: &str) -> Result<Vec<crate::model::Gpu>, String> {
    let mut gpus = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 7 {
            return Err(format!("unexpected nvidia-smi line `{line}`"));
        }
        let used = na(f[3]);
        let total = na(f[4]);
        gpus.push(crate::model::Gpu {
            index: f[0]
                .parse()
                .map_err(|_| format!("unexpected nvidia-smi line `{line}`"))?,
            name: f[1].to_string(),
            util_pct: na(f[2]),
            mem_used_pct: match (used, total) {
                (Some(u), Some(t)) if t > 0.0 => Some((u / t * 1000.0).round() / 10.0),
                _ => None,
            },
            mem_used_bytes: used.map(|u| (u * 1048576.0) as u64),
            mem_total_bytes: total.map(|t| (t * 1048576.0) as u64),
            temp_c: na(f[5]),
            fan_pct: na(f[6]),
            exporter: Some("nvidia-smi".into()),
        });
    }
    Ok(gpus)
}

pub async fn probe(s: &SshSettings, commands: &[String]) -> Result<Probe, String> {
    let before = chrono::Utc::now();
    let out = run(s, &script(commands)).await?;
    let after = chrono::Utc::now();
    let mut p = Probe {
        round_trip_ms: (after - before).num_milliseconds() as f64,
        ..Probe::default()
    };
    for (name, body, rc) in sections(&out) {
        let outcome = reply(&name, &body, rc);
        match name.as_str() {
            "uptime" => {
                let mut lines = body.lines();
                let uptime = lines
                    .next()
                    .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok());
                if let Some(u) = uptime {
                    p.uptime_s = Some(
                        crate::units::checked_uptime(u)
                            .map_err(|e| format!("ssh://{}: {e}", s.target))?,
                    );
                }
                if let Some(remote) = lines
                    .next()
                    .and_then(|l| l.trim().parse::<f64>().ok())
                    .filter(|r| r.is_finite())
                {
                    let mid = (before.timestamp_millis() + after.timestamp_millis()) as f64 / 2.0;
                    p.clock_offset_ms = Some((remote * 1000.0 - mid).round());
                }
            }
            "compose" => p.compose_version = Some(outcome.and_then(|b| compose_version(&b))),
            "nvidia-smi" => p.gpus = Some(outcome.and_then(|b| parse_nvidia_smi(&b))),
            "timedatectl" => p.ntp_synced = Some(outcome.and_then(|b| Ok(b.trim() == "yes"))),
            _ => {}
        }
    }
    if p.uptime_s.is_none() {
        return Err(format!("ssh://{}: no uptime in the answer", s.target));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sections_and_reads_nvidia_smi() {
        let out = "@@uptime\n123.4 99.0\n1795352785.123456789\n@@rc 0\n@@nvidia-smi\n0, NVIDIA RTX A5000, 0, 16204, 24564, [N/A], 30\n@@rc 0\n@@compose\nsh: docker: not found\n@@rc 127\n";
        let s = sections(out);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[2],
            ("compose".into(), "sh: docker: not found".into(), 127)
        );
        let gpus = parse_nvidia_smi(&s[1].1).unwrap();
        assert_eq!(gpus[0].mem_used_pct, Some(66.0));
        assert_eq!(gpus[0].temp_c, None, "[N/A] is a null reading");
        assert_eq!(gpus[0].util_pct, Some(0.0));
    }

    #[test]
    fn a_tool_that_is_not_installed_is_absent_and_a_broken_one_fails() {
        // What a host without a GPU, without docker, or with docker but no compose plugin says.
        let out = "@@uptime\n123.4 99.0\n1795352785.1\n@@rc 0\n\
            @@nvidia-smi\nbash: line 1: nvidia-smi: command not found\n@@rc 127\n\
            @@compose\ndocker: unknown command: docker compose\n\nRun 'docker --help' for more information\n@@rc 1\n\
            @@timedatectl\nsh: 1: timedatectl: not found\n@@rc 127\n";
        let s = sections(out);
        let replies: Vec<_> = s[1..]
            .iter()
            .map(|(name, body, rc)| reply(name, body, *rc))
            .collect();
        assert_eq!(replies, vec![Reply::NotInstalled; 3]);
        assert_eq!(
            reply("compose", "docker: 'compose' is not a docker command.", 1),
            Reply::NotInstalled
        );
        // A tool that is there and fails stays an error, with its exit code.
        let broken = reply(
            "nvidia-smi",
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
            9,
        );
        assert!(
            matches!(&broken, Reply::Failed(e) if e.contains("exited with 9")),
            "{broken:?}"
        );
        let denied = reply("nvidia-smi", "sh: nvidia-smi: Permission denied", 126);
        assert!(matches!(denied, Reply::Failed(_)), "{denied:?}");
        let no_systemd = reply(
            "timedatectl",
            "System has not been booted with systemd as init system (PID 1). Can't operate.",
            1,
        );
        assert_eq!(
            no_systemd,
            Reply::NotInstalled,
            "no systemd: nothing to ask"
        );
        // systemd is there but its time service does not answer: a real failure.
        let no_bus = reply(
            "timedatectl",
            "Failed to query server: Connection timed out",
            1,
        );
        assert!(matches!(no_bus, Reply::Failed(_)), "{no_bus:?}");
        assert_eq!(
            reply("compose", "Docker Compose version v2.27.0", 0).and_then(|b| compose_version(&b)),
            Reply::Answered("v2.27.0".to_string())
        );
        assert_eq!(compose_version("2.27.0\n"), Ok("v2.27.0".to_string()));
    }

    #[test]
    fn the_destination_comes_after_the_end_of_options() {
        let s = SshSettings {
            target: "-oProxyCommand=touch /tmp/pwned".into(),
            port: Some(2222),
            identity: None,
            known_hosts: None,
            strict_host_key_checking: true,
            connect_timeout: Duration::from_secs(5),
        };
        let run = run_args(&s, "uptime");
        let at = run.iter().position(|a| *a == s.target).unwrap();
        assert_eq!(run[at - 1], "--", "{run:?}");
        assert_eq!(run[at + 1], "uptime");
        let tunnel = tunnel_args(
            &s,
            Path::new("/tmp/l.sock"),
            Path::new("/var/run/docker.sock"),
        );
        assert_eq!(
            tunnel[tunnel.len() - 2..],
            ["--".to_string(), s.target.clone()]
        );
    }
}
