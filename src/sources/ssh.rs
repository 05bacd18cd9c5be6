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

/// Runs `command` on the node and returns its standard output.
pub async fn run(s: &SshSettings, command: &str) -> Result<String, String> {
    let mut args = base_args(s);
    args.push(s.target.clone());
    args.push(command.to_string());
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
        let mut args = base_args(s);
        args.extend([
            "-N".into(),
            "-o".into(),
            "ExitOnForwardFailure=yes".into(),
            "-L".into(),
            format!("{}:{}", local.display(), remote.display()),
            s.target.clone(),
        ]);
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
