//! The Prometheus textfile: open findings and the health of each source as gauges, so the
//! fleet's Prometheus can alert on patrol itself.

use chrono::{DateTime, Utc};

use crate::ledger::{Ledger, Status};
use crate::markdown::plain;
use crate::model::Severity;

/// Open findings as a Prometheus textfile (for node-exporter's textfile collector): counts by
/// severity and by rule, acknowledged ones apart, when the analysis ran, and whether each
/// source of the newest captures answered, so the fleet's Prometheus can alert on patrol itself.
pub fn prometheus_textfile(
    fleet: &str,
    ledger: &Ledger,
    sources: &[SourceHealth],
    at: DateTime<Utc>,
) -> String {
    let label = |v: &str| label_value(&plain(v));
    let open: Vec<&crate::ledger::Entry> = ledger
        .entries
        .values()
        .filter(|e| e.status == Status::Open && !e.finding.event)
        .collect();
    let mut out = String::new();
    out.push_str(
        "# HELP patrol_open_findings Open findings by severity, acknowledged ones excluded.\n",
    );
    out.push_str("# TYPE patrol_open_findings gauge\n");
    for sev in [Severity::Warning, Severity::Info, Severity::Suggestion] {
        let n = open
            .iter()
            .filter(|e| e.finding.severity == sev && !e.acknowledged)
            .count();
        out.push_str(&format!(
            "patrol_open_findings{{fleet=\"{}\",severity=\"{}\"}} {n}\n",
            label(fleet),
            sev.label().to_ascii_lowercase()
        ));
    }
    out.push_str("# HELP patrol_acknowledged_findings Open findings under an acknowledgement.\n");
    out.push_str("# TYPE patrol_acknowledged_findings gauge\n");
    out.push_str(&format!(
        "patrol_acknowledged_findings{{fleet=\"{}\"}} {}\n",
        label(fleet),
        open.iter().filter(|e| e.acknowledged).count()
    ));
    out.push_str("# HELP patrol_open_findings_by_rule Open findings by rule.\n");
    out.push_str("# TYPE patrol_open_findings_by_rule gauge\n");
    let mut by_rule: std::collections::BTreeMap<(&str, Severity), usize> = Default::default();
    for e in &open {
        *by_rule
            .entry((e.finding.rule_id.as_str(), e.finding.severity))
            .or_default() += 1;
    }
    for ((rule, sev), n) in by_rule {
        out.push_str(&format!(
            "patrol_open_findings_by_rule{{fleet=\"{}\",rule=\"{}\",severity=\"{}\"}} {n}\n",
            label(fleet),
            label(rule),
            sev.label().to_ascii_lowercase()
        ));
    }
    out.push_str(
        "# HELP patrol_last_analysis_timestamp_seconds When the findings were computed.\n",
    );
    out.push_str("# TYPE patrol_last_analysis_timestamp_seconds gauge\n");
    out.push_str(&format!(
        "patrol_last_analysis_timestamp_seconds{{fleet=\"{}\"}} {}\n",
        label(fleet),
        at.timestamp()
    ));
    out.push_str(
        "# HELP patrol_source_up Whether the source answered in the node's newest capture (1) or failed (0).\n",
    );
    out.push_str("# TYPE patrol_source_up gauge\n");
    for s in sources {
        out.push_str(&format!(
            "patrol_source_up{{fleet=\"{}\",node=\"{}\",source=\"{}\"}} {}\n",
            label(fleet),
            label(&s.node),
            label(&s.source),
            u8::from(s.up)
        ));
    }
    out.push_str(
        "# HELP patrol_source_last_success_timestamp_seconds When the source last answered, within the analysis window (absent: not in the window).\n",
    );
    out.push_str("# TYPE patrol_source_last_success_timestamp_seconds gauge\n");
    for s in sources {
        if let Some(t) = s.last_success {
            out.push_str(&format!(
                "patrol_source_last_success_timestamp_seconds{{fleet=\"{}\",node=\"{}\",source=\"{}\"}} {t}\n",
                label(fleet),
                label(&s.node),
                label(&s.source)
            ));
        }
    }
    out
}

/// One source of one node as the newest capture left it, for the textfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    pub node: String,
    pub source: String,
    /// It answered in the node's newest capture.
    pub up: bool,
    /// When it last answered within the analysis window (unix s).
    pub last_success: Option<i64>,
}

/// A label value in the text exposition format: backslash, double quote and line feed are the
/// three characters it escapes; other control characters were made visible before.
pub(super) fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
