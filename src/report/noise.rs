//! `patrol rules noise`: which rules speak in most sections or keep coming back, from the
//! ledger's log of sections.

use crate::ledger::Ledger;

/// One row of `patrol rules noise`.
pub struct NoiseRow {
    pub rule: String,
    pub sections: usize,
    pub share_pct: f64,
    pub flaps: u32,
    pub verdict: &'static str,
}

/// Rules by how often they spoke in the last `last` sections, and how often their findings came
/// back after resolving; the noisiest first.
pub fn noise(ledger: &Ledger, last: usize) -> Vec<NoiseRow> {
    let recent: Vec<&crate::ledger::SectionLog> = ledger.sections.iter().rev().take(last).collect();
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &recent {
        for r in &s.rules {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let mut flaps: std::collections::BTreeMap<&str, u32> = Default::default();
    for e in ledger.entries.values() {
        *flaps.entry(e.finding.rule_id.as_str()).or_default() += e.reopened;
    }
    let mut rows: Vec<NoiseRow> = counts
        .keys()
        .chain(flaps.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|rule| {
            let sections = counts.get(rule).copied().unwrap_or(0);
            let share_pct = sections as f64 / recent.len().max(1) as f64 * 100.0;
            let flaps = flaps.get(rule).copied().unwrap_or(0);
            let verdict = if share_pct > 50.0 {
                "noisy: speaks in most sections; raise its threshold or lengthen its window"
            } else if flaps >= 3 {
                "flaps: resolves and comes back; add hysteresis (for_captures) or widen its window"
            } else {
                "ok"
            };
            NoiseRow {
                rule: rule.to_string(),
                sections,
                share_pct,
                flaps,
                verdict,
            }
        })
        .filter(|r| r.sections > 0 || r.flaps > 0)
        .collect();
    rows.sort_by(|a, b| {
        b.share_pct
            .total_cmp(&a.share_pct)
            .then(b.flaps.cmp(&a.flaps))
            .then(a.rule.cmp(&b.rule))
    });
    rows
}
