//! Masking secrets in everything a snapshot stores: DSN passwords (`scheme://user:secret@`),
//! `password=`-style pairs, configured patterns, and the exact values of the passwords patrol
//! itself resolved. Applied to the whole snapshot after collection, so no collector can forget.

use regex::Regex;

use crate::model::Snapshot;

pub const MASK: &str = "***";

pub struct Redactor {
    patterns: Vec<Regex>,
    secrets: Vec<String>,
}

fn builtin() -> Vec<Regex> {
    [
        // The password part of a URL.
        r"(?P<keep>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?P<end>@)",
        // password=..., passwd: ..., secret=..., token=..., api_key=...
        r#"(?i)(?P<keep>(?:password|passwd|pwd|secret|token|api[_-]?key)\b\s*[=:]\s*["']?)[^\s"',;&]+(?P<end>)"#,
    ]
    .iter()
    .filter_map(|p| Regex::new(p).ok())
    .collect()
}

impl Redactor {
    pub fn new(extra: &[Regex], secrets: Vec<String>) -> Redactor {
        let mut patterns = builtin();
        patterns.extend(extra.iter().cloned());
        Redactor {
            patterns,
            // Very short values would mask ordinary text; they are still masked inside DSNs.
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        }
    }

    pub fn text(&self, input: &str) -> String {
        let mut out = input.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        for re in &self.patterns {
            if re.capture_names().any(|n| n == Some("keep")) {
                out = re
                    .replace_all(&out, format!("${{keep}}{MASK}${{end}}"))
                    .into_owned();
            } else {
                out = re.replace_all(&out, MASK).into_owned();
            }
        }
        out
    }

    /// Masks every string in the snapshot.
    pub fn snapshot(&self, snap: &mut Snapshot) {
        let Ok(mut value) = serde_json::to_value(&*snap) else {
            return;
        };
        self.walk(&mut value);
        if let Ok(clean) = serde_json::from_value(value) {
            *snap = clean;
        }
    }

    fn walk(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                let cleaned = self.text(s);
                if cleaned != *s {
                    *s = cleaned;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| self.walk(i)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_dsn_passwords_pairs_and_known_secrets() {
        let r = Redactor::new(
            &[Regex::new(r"sk-[A-Za-z0-9]{8,}").unwrap()],
            vec!["s3cr3t-value".into()],
        );
        assert_eq!(
            r.text("connect postgresql://patrol:hunter2@10.0.0.1:5432/db failed"),
            "connect postgresql://patrol:***@10.0.0.1:5432/db failed"
        );
        assert_eq!(r.text("login password=hunter2 ok"), "login password=*** ok");
        assert_eq!(r.text("DB_PASSWORD: 'abc def'"), "DB_PASSWORD: '*** def'");
        assert_eq!(r.text("got s3cr3t-value back"), "got *** back");
        assert_eq!(r.text("key sk-abcdefghij used"), "key *** used");
        assert_eq!(
            r.text("http://host:8080/path"),
            "http://host:8080/path",
            "a port is not a password"
        );
    }
}
