//! Acknowledgements: `acknowledged.toml`, a file people review in git, where a finding is marked
//! as known with a reason, an owner and an expiry date. An acknowledged finding leaves the
//! report for a short "Acknowledged" list until the date passes or the finding gets worse.

use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::Result;
use crate::model::Finding;
use crate::tomlread::{Ctx, Fields};

#[derive(Debug, Clone)]
pub struct Ack {
    /// Rule id (a glob).
    pub rule: String,
    /// Node name (a glob); `*` by default.
    pub node: String,
    /// Entity (a glob, e.g. `container:database-server`); `*` by default.
    pub subject: String,
    pub reason: String,
    pub owner: String,
    /// The day it expires, in the fleet's time zone (the acknowledgement holds through the day
    /// before).
    pub expires: NaiveDate,
    pub line: usize,
}

impl Ack {
    pub fn matches(&self, f: &Finding) -> bool {
        glob(&self.rule, &f.rule_id)
            && f.nodes.iter().any(|n| glob(&self.node, n))
            && glob(&self.subject, &f.entity)
    }

    /// When it stops holding.
    pub fn expires_at(&self, tz: Tz) -> DateTime<Utc> {
        let midnight = self.expires.and_hms_opt(0, 0, 0).unwrap_or_default();
        tz.from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The acknowledgements in force for a fleet, with its time zone.
#[derive(Debug, Clone, Default)]
pub struct Acks {
    pub list: Vec<Ack>,
    pub tz: Option<Tz>,
}

impl Acks {
    /// Reads an acknowledgements file; every mistake is reported with its line.
    pub fn load(path: &Path, tz: Tz) -> Result<Acks> {
        let text = crate::fsutil::read_to_string(path)?;
        Acks::parse(path, &text, tz)
    }

    pub fn parse(path: &Path, text: &str, tz: Tz) -> Result<Acks> {
        let mut ctx = Ctx::new(text);
        let mut list = Vec::new();
        if let Some(doc) = ctx.parse() {
            let mut top = Fields::new(doc.get_ref(), doc.span(), "the file");
            for (table, span) in top.tables(&mut ctx, "ack") {
                let line = ctx.line_col(span.start).0;
                let mut f = Fields::new(table, span, format!("ack at line {line}"));
                let rule = f.string(&mut ctx, "rule", true);
                let node = f.string(&mut ctx, "node", false);
                let subject = f.string(&mut ctx, "subject", false);
                let reason = f.string(&mut ctx, "reason", true);
                let owner = f.string(&mut ctx, "owner", true);
                let expires = f.string(&mut ctx, "expires", true).and_then(|e| {
                    match NaiveDate::parse_from_str(e.get_ref(), "%Y-%m-%d") {
                        Ok(d) => Some(d),
                        Err(_) => {
                            ctx.report(
                                e.span(),
                                format!(
                                    "ack at line {line}: `expires` must be a date like 2026-03-31, not `{}`",
                                    e.get_ref()
                                ),
                            );
                            None
                        }
                    }
                });
                for (key, v) in [("rule", &rule), ("owner", &owner)] {
                    if let Some(v) = v
                        && v.get_ref().trim().is_empty()
                    {
                        ctx.report(
                            v.span(),
                            format!("ack at line {line}: `{key}` must not be empty"),
                        );
                    }
                }
                if let Some(r) = &reason
                    && r.get_ref().trim().is_empty()
                {
                    ctx.report(
                        r.span(),
                        format!("ack at line {line}: `reason` must say why"),
                    );
                }
                f.finish(&mut ctx);
                if let (Some(rule), Some(reason), Some(owner), Some(expires)) =
                    (rule, reason, owner, expires)
                {
                    let node = node.map(|n| n.into_inner()).unwrap_or_else(|| "*".into());
                    let subject = subject
                        .map(|s| s.into_inner())
                        .unwrap_or_else(|| "*".into());
                    // Two acks for one finding: which reason and expiry hold would be a guess.
                    if let Some(first) = list.iter().find(|a: &&Ack| {
                        a.rule == *rule.get_ref() && a.node == node && a.subject == subject
                    }) {
                        ctx.report(
                            rule.span(),
                            format!(
                                "ack at line {line}: the same rule, node and subject are acknowledged at line {}",
                                first.line
                            ),
                        );
                    }
                    list.push(Ack {
                        rule: rule.into_inner(),
                        node,
                        subject,
                        reason: reason.into_inner(),
                        owner: owner.into_inner(),
                        expires,
                        line,
                    });
                }
            }
            top.finish(&mut ctx);
        }
        ctx.into_result(path)?;
        Ok(Acks { list, tz: Some(tz) })
    }

    /// The acknowledgement that holds for a finding at `now`, if any.
    pub fn holding(&self, f: &Finding, now: DateTime<Utc>) -> Option<&Ack> {
        let tz = self.tz.unwrap_or(chrono_tz::UTC);
        self.list
            .iter()
            .find(|a| a.matches(f) && now < a.expires_at(tz))
    }

    /// The acknowledgement that matched a finding but has expired by `now`.
    pub fn expired(&self, f: &Finding, now: DateTime<Utc>) -> Option<&Ack> {
        let tz = self.tz.unwrap_or(chrono_tz::UTC);
        self.list
            .iter()
            .find(|a| a.matches(f) && now >= a.expires_at(tz))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("container:*", "container:db"));
        assert!(glob("*memory*", "container-memory-leak"));
        assert!(!glob("container:*", "gpu:0"));
        assert!(glob("vk01", "vk01"));
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let text = "[[ack]]\nrule = \"r\"\nreason = \"known\"\nowner = \"ana\"\nexpires = \"31/03/2026\"\n\n[[ack]]\nrule = \"s\"\nowner = \"bo\"\nexpires = \"2026-03-31\"\ncolour = \"red\"\n";
        let Err(Error::Invalid { problems, .. }) =
            Acks::parse(Path::new("acknowledged.toml"), text, chrono_tz::UTC)
        else {
            panic!("expected problems");
        };
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert!(lines.contains(&5), "{problems:?}");
        assert!(lines.contains(&11), "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("missing `reason`"))
        );
    }

    #[test]
    fn duplicate_and_empty_acks_are_refused_with_their_lines() {
        let one = "rule = \"r\"\nnode = \"vk01\"\nreason = \"known\"\nowner = \"ana\"\nexpires = \"2026-03-31\"\n";
        let text = format!(
            "[[ack]]\n{one}\n[[ack]]\n{one}\n[[ack]]\nrule = \"s\"\nreason = \"x\"\nowner = \" \"\nexpires = \"2026-03-31\"\n"
        );
        let Err(Error::Invalid { problems, .. }) =
            Acks::parse(Path::new("acknowledged.toml"), &text, chrono_tz::UTC)
        else {
            panic!("expected problems");
        };
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![9, 18], "{problems:?}");
        assert!(problems[0].message.contains("at line 1"), "{problems:?}");
    }

    mod never_panics {
        use super::super::*;
        use crate::tomlread::arbitrary::tomlish;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn loading_any_acks_text_returns(text in tomlish()) {
                let _ = Acks::parse(Path::new("a.toml"), &text, chrono_tz::UTC);
            }
        }
    }
}
