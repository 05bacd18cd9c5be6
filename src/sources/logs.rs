//! Turning log lines into templates with counts (the snapshot never stores raw dumps). Every
//! line read is templated and counted, so an ERROR after thousands of INFO lines is never lost;
//! what is bounded is what is kept: `max_templates` distinct templates (plus a reserve of
//! `warn_templates` for WARNING and above, so a flood of distinct INFO lines cannot crowd out an
//! error), a few samples per template, and past the caps a count per level in `other`. Memory
//! stays bounded whatever a container writes.

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
    /// Templates admitted on the WARNING-and-above reserve, past `max_templates`.
    reserved: usize,
    /// Lines past the caps, per level.
    other: BTreeMap<String, u64>,
    pub lines_total: u64,
    pub dropped: u64,
}

/// Levels that may use the reserve: the ones a reader must never miss.
fn is_warning_or_above(level: Option<&str>) -> bool {
    matches!(
        level,
        Some("WARNING" | "ERROR" | "CRITICAL" | "FATAL" | "PANIC")
    )
}

impl<'s> Reducer<'s> {
    pub fn new(settings: &'s LogSettings) -> Self {
        Reducer {
            settings,
            templates: BTreeMap::new(),
            reserved: 0,
            other: BTreeMap::new(),
            lines_total: 0,
            dropped: 0,
        }
    }

    /// Distinct templates held now (bounded by `max_templates + warn_templates`).
    pub fn templates_held(&self) -> usize {
        self.templates.len()
    }

    /// Adds one line written at `at` (when the collector knows it). Every line is counted: in
    /// its template, or past the caps in `other` under its level.
    pub fn add(&mut self, at: Option<DateTime<Utc>>, text: &str) {
        self.lines_total += 1;
        let line = split_line(text);
        // The pid and the level go into their own fields, not the template.
        let mut template = logtemplate::mask(line.message);
        logtemplate::truncate_at_char(&mut template, logtemplate::MAX_TEMPLATE_BYTES);
        let level = line.level.clone().unwrap_or_else(|| "-".into());
        let key = (template, level);
        if !self.templates.contains_key(&key) {
            let general = self.templates.len() - self.reserved;
            if general >= self.settings.max_templates {
                if is_warning_or_above(line.level.as_deref())
                    && self.reserved < self.settings.warn_templates
                {
                    self.reserved += 1;
                } else {
                    self.dropped += 1;
                    *self.other.entry(key.1).or_default() += 1;
                    return;
                }
            }
        }
        let entry = self
            .templates
            .entry(key.clone())
            .or_insert_with(|| LogTemplate::new(key.0.clone(), line.level.clone()));
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
            other: self.other,
            truncated: None,
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
    fn every_line_is_counted_and_templates_are_bounded() {
        let settings = LogSettings {
            max_templates: 2,
            warn_templates: 1,
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
        r.add(None, "INFO b");
        r.add(None, "WARN c");
        r.add(None, "ERROR d");
        r.add(None, "e");
        let s = r.finish("container:x", Utc::now(), Utc::now());
        assert_eq!(s.lines_total, 155);
        assert_eq!(s.templates.len(), 3, "two templates and one on the reserve");
        let t = &s.templates[0];
        assert_eq!(t.template, "ERROR rejecting message <n>: bar_uuid='<*>'");
        assert_eq!(t.count, 150, "every line counted in its template");
        assert_eq!(t.fields["bar_uuid"]["empty"], 150);
        assert_eq!(t.samples.len(), 3);
        assert!(s.templates.iter().any(|t| t.template == "WARN c"));
        let other: BTreeMap<&str, u64> = s.other.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(other, BTreeMap::from([("INFO", 1), ("ERROR", 1), ("-", 1)]));
        assert_eq!(s.lines_dropped, 3);
        let kept: u64 = s.templates.iter().map(|t| t.count).sum();
        assert_eq!(kept + s.lines_dropped, s.lines_total);
    }

    #[test]
    fn an_error_after_thousands_of_info_lines_is_kept() {
        let settings = LogSettings::default();
        let mut r = Reducer::new(&settings);
        for i in 0..6000 {
            r.add(None, &format!("INFO processed batch {i}"));
        }
        r.add(None, "ERROR disk full");
        let s = r.finish("container:x", Utc::now(), Utc::now());
        assert_eq!(s.lines_total, 6001);
        let error = s
            .templates
            .iter()
            .find(|t| t.template == "ERROR disk full")
            .expect("the ERROR after the chatter is stored");
        assert_eq!(error.count, 1);
        assert_eq!(error.level.as_deref(), Some("ERROR"));
        assert_eq!(s.lines_dropped, 0);
    }

    /// A different word per number: distinct templates, since digits are masked.
    fn word(mut i: usize) -> String {
        let mut w = String::new();
        loop {
            w.push((b'a' + (i % 26) as u8) as char);
            i /= 26;
            if i == 0 {
                return w;
            }
        }
    }

    #[test]
    fn a_flood_of_distinct_info_lines_cannot_crowd_out_an_error() {
        let settings = LogSettings::default();
        let mut r = Reducer::new(&settings);
        for i in 0..20_000 {
            r.add(None, &format!("INFO user {} logged in", word(i)));
        }
        r.add(None, "ERROR disk full");
        assert!(r.templates_held() <= settings.max_templates + settings.warn_templates);
        let s = r.finish("container:x", Utc::now(), Utc::now());
        assert!(s.templates.iter().any(|t| t.template == "ERROR disk full"));
        assert_eq!(s.other["INFO"], 20_000 - settings.max_templates as u64);
        let kept: u64 = s.templates.iter().map(|t| t.count).sum();
        assert_eq!(kept + s.other.values().sum::<u64>(), s.lines_total);
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
                warn_templates: 4,
                ..LogSettings::default()
            };
            let mut r = Reducer::new(&settings);
            for l in lines {
                r.add(None, l);
            }
            let s = r.finish("container:x", Utc::now(), Utc::now());
            assert!(s.templates.len() <= 20);
            // Every line is counted once: in its template or in `other`.
            let kept: u64 = s.templates.iter().map(|t| t.count).sum();
            assert_eq!(kept + s.other.values().sum::<u64>(), s.lines_total);
            assert_eq!(s.other.values().sum::<u64>(), s.lines_dropped);
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
            fn many_lines_of_any_level_add_up_within_bounds(
                lines in proptest::collection::vec(
                    ("(INFO|WARN|ERROR|DEBUG|FATAL|)", "[a-z]{1,3}"),
                    1..200,
                )
            ) {
                let lines: Vec<String> =
                    lines.iter().map(|(level, w)| format!("{level} {w} happened")).collect();
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
