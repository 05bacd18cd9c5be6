//! Turning log lines into templates with counts (the snapshot never stores raw dumps). Bounded:
//! past `max_lines` lines, or once `max_templates` templates exist, lines are only counted as
//! dropped, so a node writing 200 lines a second cannot blow up its snapshot.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use crate::config::LogSettings;
use crate::logtemplate;
use crate::model::{LogStream, LogTemplate};

/// Most PIDs kept per template (the lowest and highest seen are always among them).
const MAX_PIDS: usize = 8;

struct Patterns {
    level: Regex,
    pid: Regex,
    stamp: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("bad pattern {p}: {e}"));
        Patterns {
            level: re(r"\b(FATAL|PANIC|CRITICAL|CRIT|ERROR|ERR|WARNING|WARN|NOTICE|INFO|LOG|DEBUG|TRACE|DETAIL|HINT|STATEMENT)\b"),
            pid: re(r"\[(\d{1,7})\]|\bpid[=: ]\s*(\d{1,7})\b"),
            stamp: re(r"\b(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)"),
        }
    })
}

fn normalise_level(l: &str) -> String {
    match l {
        "WARN" => "WARNING".into(),
        "ERR" => "ERROR".into(),
        "CRIT" => "CRITICAL".into(),
        other => other.to_string(),
    }
}

/// One line broken into its parts.
#[derive(Debug, PartialEq)]
pub struct Line<'a> {
    pub level: Option<String>,
    pub pid: Option<u32>,
    /// A timestamp written inside the line by the application, as written.
    pub stamp: Option<&'a str>,
    /// The line without its leading timestamp, for templating.
    pub message: &'a str,
}

pub fn split_line(text: &str) -> Line<'_> {
    let p = patterns();
    let head: String = text.chars().take(120).collect();
    let level = p.level.captures(&head).map(|c| normalise_level(&c[1]));
    let pid = p
        .pid
        .captures(&head)
        .and_then(|c| c.get(1).or(c.get(2)))
        .and_then(|m| m.as_str().parse().ok());
    let stamp = p
        .stamp
        .find(text)
        .filter(|m| m.start() < 40)
        .map(|m| m.as_str());
    let mut message = match p.stamp.find(text) {
        Some(m) if m.start() < 3 => text[m.end()..].trim_start(),
        _ => text,
    };
    // After a leading timestamp, a zone ("UTC") and a "[pid]" are part of the prefix, not the
    // message (PostgreSQL's `%m [%p]`); the pid is kept in its own field.
    if message.len() < text.len() {
        if let Some((zone, rest)) = message.split_once(' ')
            && (2..=5).contains(&zone.len())
            && zone.chars().all(|c| c.is_ascii_uppercase())
            && !p.level.is_match(zone)
        {
            message = rest;
        }
        if let Some(rest) = message.strip_prefix('[')
            && let Some((pid, rest)) = rest.split_once(']')
            && pid.chars().all(|c| c.is_ascii_digit())
        {
            message = rest.trim_start();
        }
    }
    Line {
        level,
        pid,
        stamp,
        message,
    }
}

pub struct Reducer<'s> {
    settings: &'s LogSettings,
    templates: BTreeMap<(String, String), LogTemplate>,
    pub lines_total: u64,
    pub dropped: u64,
}

impl<'s> Reducer<'s> {
    pub fn new(settings: &'s LogSettings) -> Self {
        Reducer {
            settings,
            templates: BTreeMap::new(),
            lines_total: 0,
            dropped: 0,
        }
    }

    /// Adds one line written at `at` (when the collector knows it).
    pub fn add(&mut self, at: Option<DateTime<Utc>>, text: &str) {
        self.lines_total += 1;
        if self.lines_total as usize > self.settings.max_lines {
            self.dropped += 1;
            return;
        }
        let line = split_line(text);
        // The pid and the level go into their own fields, not the template.
        let mut template = logtemplate::mask(line.message);
        logtemplate::truncate_at_char(&mut template, logtemplate::MAX_TEMPLATE_BYTES);
        let level = line.level.clone().unwrap_or_else(|| "-".into());
        let key = (template, level);
        if !self.templates.contains_key(&key) && self.templates.len() >= self.settings.max_templates
        {
            self.dropped += 1;
            return;
        }
        let entry = self
            .templates
            .entry(key.clone())
            .or_insert_with(|| LogTemplate {
                template: key.0.clone(),
                level: line.level.clone(),
                count: 0,
                first_ts: None,
                last_ts: None,
                last_ts_raw: None,
                pids: Vec::new(),
                fields: BTreeMap::new(),
                samples: Vec::new(),
            });
        entry.count += 1;
        if let Some(t) = at {
            entry.first_ts = Some(entry.first_ts.map_or(t, |f| f.min(t)));
            entry.last_ts = Some(entry.last_ts.map_or(t, |l| l.max(t)));
        }
        if let Some(s) = line.stamp {
            entry.last_ts_raw = Some(s.to_string());
        }
        if let Some(pid) = line.pid
            && !entry.pids.contains(&pid)
        {
            entry.pids.push(pid);
            entry.pids.sort_unstable();
            if entry.pids.len() > MAX_PIDS {
                // Keep the extremes; drop one from the middle.
                entry.pids.remove(MAX_PIDS / 2);
            }
        }
        for (name, re) in &self.settings.fields {
            if let Some(v) = re.captures(text).and_then(|c| c.get(1)) {
                let values = entry.fields.entry(name.clone()).or_default();
                if values.len() < 20 || values.contains_key(v.as_str()) {
                    *values.entry(v.as_str().to_string()).or_default() += 1;
                }
            }
        }
        if entry.samples.len() < self.settings.samples {
            entry.samples.push(text.chars().take(500).collect());
        }
    }

    pub fn finish(
        self,
        source: &str,
        window_start: DateTime<Utc>,
        window_end: DateTime<Utc>,
    ) -> LogStream {
        let mut templates: Vec<LogTemplate> = self.templates.into_values().collect();
        templates.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.template.cmp(&b.template))
        });
        LogStream {
            source: source.to_string(),
            window_start,
            window_end,
            lines_total: self.lines_total,
            lines_dropped: self.dropped,
            templates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_postgres_and_app_lines() {
        let l = split_line(
            r#"2026-11-22 13:04:15.076 UTC [7249] patrol@visionking FATAL:  database "visionking" does not exist"#,
        );
        assert_eq!(l.level.as_deref(), Some("FATAL"));
        assert_eq!(l.pid, Some(7249));
        assert_eq!(l.stamp, Some("2026-11-22 13:04:15.076"));
        assert_eq!(
            l.message,
            r#"patrol@visionking FATAL:  database "visionking" does not exist"#
        );
        let l = split_line("2026-02-21 18:00:01 INFO cleanup cycle 7 finished");
        assert_eq!(
            l.message, "INFO cleanup cycle 7 finished",
            "a level is not a zone"
        );
        let l = split_line("[2026-02-21 18:00:01] WARN cleanup cycle finished");
        assert_eq!(l.level.as_deref(), Some("WARNING"));
        assert_eq!(l.stamp, Some("2026-02-21 18:00:01"));
    }

    #[test]
    fn bounded_and_counted() {
        let settings = LogSettings {
            max_lines: 100,
            max_templates: 2,
            fields: vec![(
                "bar_uuid".into(),
                Regex::new(r"bar_uuid='([^']*)'").unwrap(),
            )],
            ..LogSettings::default()
        };
        let mut r = Reducer::new(&settings);
        for i in 0..150 {
            r.add(
                None,
                &format!("ERROR rejecting message {i}: bar_uuid='empty'"),
            );
        }
        r.add(None, "INFO a");
        let s = r.finish("container:x", Utc::now(), Utc::now());
        assert_eq!(s.lines_total, 151);
        assert_eq!(s.lines_dropped, 51);
        assert_eq!(s.templates.len(), 1);
        let t = &s.templates[0];
        assert_eq!(t.template, "ERROR rejecting message <n>: bar_uuid='<*>'");
        assert_eq!(t.count, 100);
        assert_eq!(t.fields["bar_uuid"]["empty"], 100);
        assert_eq!(t.samples.len(), 3);
    }

    #[test]
    fn a_long_portuguese_line_is_cut_between_characters() {
        let settings = LogSettings::default();
        let mut r = Reducer::new(&settings);
        // Byte 400 of the template falls inside "ç".
        let line = format!("ERROR {}ção do lote falhou", "x".repeat(393));
        r.add(None, &line);
        let s = r.finish("container:x", Utc::now(), Utc::now());
        assert_eq!(s.templates.len(), 1);
        assert!(s.templates[0].template.len() <= logtemplate::MAX_TEMPLATE_BYTES);
        assert!(s.templates[0].template.ends_with('x'));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn check(lines: &[String]) {
            let settings = LogSettings {
                max_templates: 16,
                ..LogSettings::default()
            };
            let mut r = Reducer::new(&settings);
            for l in lines {
                r.add(None, l);
            }
            let s = r.finish("container:x", Utc::now(), Utc::now());
            assert!(s.templates.len() <= 16);
            for t in &s.templates {
                assert!(t.template.len() <= logtemplate::MAX_TEMPLATE_BYTES);
                assert!(t.samples.iter().all(|x| x.chars().count() <= 500));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_reduces_within_bounds(lines in proptest::collection::vec(".{0,700}", 1..8)) {
                check(&lines);
            }

            #[test]
            fn any_bytes_reduce_within_bounds(
                chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..900), 1..6)
            ) {
                // What a collector sees: bytes from the wire read leniently as UTF-8.
                let lines: Vec<String> =
                    chunks.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect();
                check(&lines);
            }

            #[test]
            fn multibyte_text_near_the_cap_never_panics(
                pad in 380usize..420,
                tail in "[çãéúõ€😀a-z ]{1,40}"
            ) {
                check(&[format!("{}{tail}", "a".repeat(pad))]);
            }
        }
    }
}
