//! The improvements report: each analysis that has something to say appends one section to the
//! rolling report of its month (`improvements/2026-02.md`, the fleet's time zone) and writes the
//! same section alone to a dated file (`reports/2026/02/2026-02-18_2153-0300.md`).
//!
//! Output stays bounded over years: a month's file holds a month (a 3-node fleet every 15 min
//! writes about 2 MB), `improvements.md` is a small index of the months, newest first, with
//! their counts, and dated files older than `keep_dated` are deleted (they are for mail and
//! attachments; the monthly files are the record). A single `improvements.md` written before
//! monthly files is moved, whole, to `improvements/earlier.md` and linked from the index.
//!
//! A section sums up what is still open (counts, the five most important findings) and links
//! `open.md`, the whole list by node, which every analysis rewrites: sections stay short however
//! much is open, and the full list exists once, not once per section.
//!
//! Sections are rendered by minijinja templates (report-templates/); the binary carries copies
//! so it works from any directory, and a `report-templates/` directory next to where patrol runs
//! overrides them.
//!
//! Times are local to the fleet, so a heading carries the UTC offset in force at its time: when
//! clocks fall back, 02:30 summer time and 02:30 winter time are two headings and two dated files
//! (`2026-10-25_0230+0200.md`, `2026-10-25_0230+0100.md`), never one overwriting the other.
//! Every value of a section is flattened to one line with its control characters made visible,
//! so fleet text cannot open a block (a forged `## ` heading) or reach a terminal as an escape.

mod files;
mod json;
mod noise;
mod section;
mod site;
mod textfile;

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fsutil;
use crate::markdown::plain;

pub use files::{
    Output, commit_section, month_key, prune_dated, render_index, render_open, render_section,
    write_open,
};
pub use json::json;
pub use noise::{NoiseRow, noise};
pub use section::{build_section, heading_time, open_by_severity};
pub use site::{markdown_html, write_site};
pub use textfile::{SourceHealth, prometheus_textfile};

pub const HEADER_TEMPLATE: &str = "improvements-header.md.j2";
pub const SECTION_TEMPLATE: &str = "section.md.j2";
pub const DIGEST_TEMPLATE: &str = "digest.md.j2";

const BUILTIN: &[(&str, &str)] = &[
    (
        HEADER_TEMPLATE,
        include_str!("../../report-templates/improvements-header.md.j2"),
    ),
    (
        SECTION_TEMPLATE,
        include_str!("../../report-templates/section.md.j2"),
    ),
    (
        DIGEST_TEMPLATE,
        include_str!("../../report-templates/digest.md.j2"),
    ),
];

/// Renders a digest view with `digest.md.j2`.
pub fn render_digest<T: Serialize>(view: &T, template_dir: Option<&Path>) -> Result<String> {
    let env = environment(template_dir)?;
    env.get_template(DIGEST_TEMPLATE)
        .and_then(|t| {
            t.render(
                minijinja::context! { d => minijinja::Value::from(minijinja::value::Serde(view)) },
            )
        })
        .map(|text| plain(&text))
        .map_err(|e| Error::Template {
            name: DIGEST_TEMPLATE.to_string(),
            message: e.to_string(),
        })
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub severity: String,
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// "2026-02-18 21:53 (UTC-03:00)" in the fleet's time zone, with the offset in force then
    /// (and seconds when the previous section was in the same minute).
    pub heading_time: String,
    pub severity: String,
    pub items: Vec<Item>,
    /// One line per open finding not repeated in full, most important first (the whole list,
    /// for templates written before the summary).
    pub still_open: Vec<String>,
    /// "41 still open: 9 WARNING, 30 INFO, 2 SUGGESTION — vk01 18, vk02 12, vk03 11" (empty
    /// when nothing is).
    pub open_summary: String,
    /// The first lines of `still_open`, the ones a section names.
    pub open_top: Vec<String>,
    /// When the previous section named the same `open_top` lines: its time ("Feb 22 17:15"), and
    /// the template says so instead of naming them again. Empty otherwise.
    pub open_top_same_as: String,
    /// "New 1, escalated 1; still open 29": the non-zero counts, for the section's last line.
    pub counts_text: String,
    /// When the previous section had the same findings open: its time, and the template says so
    /// in one line instead of the summary and the five. Empty otherwise.
    pub open_same_as: String,
    /// Which findings are open, as a fingerprint remembered for the next section.
    #[serde(skip)]
    pub open_hash: u64,
    /// The identities of the findings `open_top` names, remembered for the next section.
    #[serde(skip)]
    pub open_top_keys: Vec<String>,
    /// How many still-open findings `open_top` leaves to `open.md`.
    pub open_more: usize,
    /// How many findings `open.md` lists as open: the still-open ones and those this section
    /// reports in full that stay open.
    pub open_total: usize,
    /// One line per acknowledged finding.
    pub acknowledged: Vec<String>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counts {
    pub new: usize,
    pub escalated: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub resolved: usize,
    pub still_open: usize,
    pub acknowledged: usize,
}

fn environment(template_dir: Option<&Path>) -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| Error::Template {
            name: "syntax".into(),
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    for (name, builtin) in BUILTIN {
        let source = match template_dir.map(|d| d.join(name)) {
            Some(p) if p.exists() => fsutil::read_to_string(&p)?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(|e| Error::Template {
                name: name.to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(env)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
