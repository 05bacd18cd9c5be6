//! The fleet configuration (`patrol.toml`). Read by hand through [`crate::tomlread`] so every
//! mistake is reported at once with its line. This version knows the fleet and where things
//! go; per-node sources arrive with the collectors.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::tomlread::{Ctx, Fields};

#[derive(Debug, Clone)]
pub struct Config {
    pub fleet: String,
    pub timezone: Tz,
    pub archive: PathBuf,
    pub output: PathBuf,
    pub rules: Option<PathBuf>,
    pub window: String,
    /// The name this machine is archived under.
    pub node: String,
    pub role: Option<String>,
    /// Docker engine socket (`docker = "unix:///var/run/docker.sock"`).
    pub docker: Option<PathBuf>,
}

pub fn load(path: &Path) -> Result<Config> {
    let text = crate::fsutil::read_to_string(path)?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<Config> {
    let mut ctx = Ctx::new(text);
    let mut config = None;
    if let Some(doc) = ctx.parse() {
        let mut f = Fields::new(doc.get_ref(), doc.span(), "patrol.toml");
        let fleet = f.string(&mut ctx, "fleet", true);
        let tz = f.string(&mut ctx, "timezone", false).and_then(|t| {
            let parsed = t.get_ref().parse::<Tz>().ok();
            if parsed.is_none() {
                ctx.report(
                    t.span(),
                    format!(
                        "`{}` is not an IANA time zone (e.g. America/Sao_Paulo)",
                        t.get_ref()
                    ),
                );
            }
            parsed
        });
        let archive = f.string(&mut ctx, "archive", false);
        let output = f.string(&mut ctx, "output", false);
        let rules = f.string(&mut ctx, "rules", false);
        let window = f.string(&mut ctx, "window", false);
        if let Some(w) = &window
            && let Err(e) = crate::units::parse_duration_secs(w.get_ref())
        {
            ctx.report(w.span(), format!("window: {e}"));
        }
        let node = f.string(&mut ctx, "node", false);
        let role = f.string(&mut ctx, "role", false);
        let docker = f.string(&mut ctx, "docker", false).and_then(|d| {
            match d.get_ref().strip_prefix("unix://") {
                Some(path) => Some(PathBuf::from(path)),
                None => {
                    ctx.report(d.span(), format!("docker: `{}` must be a unix:// socket address (TCP and ssh:// engines come with the fleet collectors)", d.get_ref()));
                    None
                }
            }
        });
        f.finish(&mut ctx);
        if let Some(fleet) = fleet {
            let slug = slug(fleet.get_ref());
            let base = path.parent().unwrap_or(Path::new("."));
            let rel = |p: Option<toml::Spanned<String>>, default: String| {
                base.join(p.map(|s| s.into_inner()).unwrap_or(default))
            };
            config = Some(Config {
                archive: rel(archive, format!("snapshots/{slug}")),
                output: rel(output, format!("output/{slug}")),
                rules: rules.map(|r| base.join(r.into_inner())),
                window: window
                    .map(|w| w.into_inner())
                    .unwrap_or_else(|| "24h".into()),
                timezone: tz.unwrap_or(chrono_tz::UTC),
                node: node.map(|n| n.into_inner()).unwrap_or_else(local_hostname),
                role: role.map(|r| r.into_inner()),
                docker,
                fleet: fleet.into_inner(),
            });
        }
    }
    if ctx.problems.is_empty() {
        config.ok_or_else(|| Error::bad_file(path, "empty configuration"))
    } else {
        Err(Error::Invalid {
            path: path.to_path_buf(),
            problems: ctx.problems,
        })
    }
}

/// A directory-safe name for a fleet: lower case, `-` for anything else.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() { "fleet".into() } else { s }
}

pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| crate::model::validate_node_name(h).is_ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The machine's time zone: $TZ, then /etc/timezone, else UTC.
pub fn local_timezone() -> Tz {
    std::env::var("TZ")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/timezone").ok())
        .and_then(|t| t.trim().trim_start_matches(':').parse::<Tz>().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// The configuration used when there is no file: this machine, under its host name.
pub fn local_default() -> Config {
    let node = local_hostname();
    let slug = slug(&node);
    Config {
        fleet: node.clone(),
        timezone: local_timezone(),
        archive: PathBuf::from(format!("snapshots/{slug}")),
        output: PathBuf::from(format!("output/{slug}")),
        rules: None,
        window: "24h".into(),
        node,
        role: None,
        docker: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_mistake_with_lines() {
        let err = parse(
            Path::new("p.toml"),
            "fleet = \"x\"\ntimezone = \"Mars/Base\"\nwindwo = \"2h\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("p.toml:2:12"), "{text}");
        assert!(
            text.contains("p.toml:3:1: patrol.toml: unknown key `windwo` (did you mean `window`?)"),
            "{text}"
        );
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("VisionKing 03002"), "visionking-03002");
    }
}
