//! The reports as a web page: `output/<fleet>/site/`, static files a file browser or any web
//! server opens, rewritten by every analysis and every digest. The index shows the score card,
//! the open findings by severity, the latest sections, the digests by week and the newest
//! digest's charts; one page per monthly report, per digest, for `open.md` and for the reports'
//! index `improvements.md`. Every page is
//! rendered from the same markdown the reports are (pulldown-cmark), so the site says nothing
//! the files do not. Raw HTML in the markdown is shown as text, never passed through: fleet text
//! (a log line, a container name) cannot put a script on the page. No page runs any script.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

use super::files::Output;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ledger::{Ledger, Status};
use crate::markdown::escape_xml;
use crate::model::Severity;

/// The first line of every page: a page without it (another patrol's, or no page) is rendered
/// again even when it is newer than its markdown.
const MARKER: &str = concat!(
    "<!-- patrol site, version ",
    env!("CARGO_PKG_VERSION"),
    " -->"
);

/// How many of the newest dated sections the index shows in full.
const LATEST_SECTIONS: usize = 3;

impl Output {
    /// The folder of the web pages.
    pub fn site(&self) -> PathBuf {
        self.dir.join("site")
    }
}

/// Markdown as an HTML fragment: tables on, raw HTML shown as text, links to `.md` files
/// pointed at their pages.
pub fn markdown_html(md: &str) -> String {
    markdown_html_moved(md, 0)
}

/// [`markdown_html`] of a file `up` folders deeper than the page that shows it (a dated
/// section of `reports/YYYY/MM/` on the index): its relative links climb `up` fewer folders.
fn markdown_html_moved(md: &str, up: usize) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(md, options).map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: page_link(rebase(dest_url, up)),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// A relative link written `up` folders deeper, seen from the page: that many `../` fewer (a link
/// into the deeper folder itself is left alone: the site shows no dated section on its own).
fn rebase(dest: CowStr<'_>, up: usize) -> CowStr<'_> {
    if up == 0 || dest.contains("://") || dest.starts_with('#') {
        return dest;
    }
    let mut rest: &str = &dest;
    for _ in 0..up {
        match rest.strip_prefix("../") {
            Some(r) => rest = r,
            None => return dest,
        }
    }
    CowStr::from(rest.to_string())
}

/// A link to a markdown file becomes a link to its page: the pages keep the files' folders
/// (`improvements/2026-02.md` is `site/improvements/2026-02.html`), so only the suffix changes.
fn page_link(dest: CowStr<'_>) -> CowStr<'_> {
    match dest.strip_suffix(".md") {
        Some(stem) if !dest.contains("://") => CowStr::from(format!("{stem}.html")),
        _ => dest,
    }
}

/// A whole page: the fragment in a layout that reads on a phone.
fn page(title: &str, depth: usize, body: &str) -> String {
    let up = "../".repeat(depth);
    format!(
        "<!DOCTYPE html>\n{MARKER}\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <nav><a href=\"{up}index.html\">index</a> · <a href=\"{up}open.html\">open findings</a></nav>\n\
         <main>\n{body}</main>\n</body>\n</html>\n",
        escape_xml(title)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:0.5rem 1rem;line-height:1.45}\
table{border-collapse:collapse;display:block;overflow-x:auto}td,th{border:1px solid #ccc;padding:0.2rem 0.5rem;text-align:left}\
img{max-width:100%;height:auto}code{background:#f3f3f3;padding:0 0.2rem}nav{margin-bottom:1rem}\
.warning{color:#a40000}.info{color:#204a87}.suggestion{color:#4e6a00}";

/// Writes the page of one markdown file at `rel` (a path under the output folder) into the
/// site, when the page is older than the file.
fn render_file(output: &Output, rel: &Path, title: &str) -> Result<Option<PathBuf>> {
    let source = output.dir.join(rel);
    let Ok(meta) = std::fs::metadata(&source) else {
        return Ok(None);
    };
    let target = output.site().join(rel).with_extension("html");
    let fresh = std::fs::metadata(&target)
        .and_then(|t| Ok(t.modified()? >= meta.modified()?))
        .unwrap_or(false)
        && written_by_this_patrol(&target);
    if !fresh {
        let md = read(&source)?;
        let depth = rel.components().count().saturating_sub(1);
        write(output, &target, &page(title, depth, &markdown_html(&md)))?;
    }
    Ok(Some(target))
}

/// Whether a page's second line is this version's [`MARKER`].
fn written_by_this_patrol(page: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(page) else {
        return false;
    };
    std::io::BufReader::new(file)
        .lines()
        .nth(1)
        .and_then(|l| l.ok())
        .is_some_and(|l| l == MARKER)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn write(output: &Output, path: &Path, text: &str) -> Result<()> {
    fsutil::write_atomic(path, text.as_bytes(), output.mode)
}

/// The `.md` files of a folder of the output, by name.
fn markdown_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    names
}

/// The newest dated sections, newest first: `reports/YYYY/MM/*.md` under the output.
fn latest_sections(output: &Output, count: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut years: Vec<PathBuf> = dirs(&output.reports_dir());
    years.sort();
    for year in years.iter().rev() {
        let mut months = dirs(year);
        months.sort();
        for month in months.iter().rev() {
            let mut files = markdown_files(month);
            files.reverse();
            found.extend(files.into_iter().map(|f| month.join(f)));
            if found.len() >= count {
                found.truncate(count);
                return found;
            }
        }
    }
    found
}

fn dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Rewrites the site from the output folder: a page per monthly report, per digest (its charts
/// copied beside it) and for `open.md`, then the index.
pub fn write_site(
    output: &Output,
    fleet: &str,
    tz: Tz,
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<()> {
    let months = markdown_files(&output.months_dir());
    for m in &months {
        render_file(
            output,
            &Path::new("improvements").join(m),
            &format!("{fleet} — {}", m.trim_end_matches(".md")),
        )?;
    }
    render_file(
        output,
        Path::new("open.md"),
        &format!("{fleet} — open findings"),
    )?;
    render_file(
        output,
        Path::new("improvements.md"),
        &format!("{fleet} — reports"),
    )?;
    let digests_dir = output.dir.join("digests");
    let digests = markdown_files(&digests_dir);
    for d in &digests {
        render_file(
            output,
            &Path::new("digests").join(d),
            &format!("{fleet} — digest {}", d.trim_end_matches(".md")),
        )?;
    }
    let mut charts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&digests_dir)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        // "2026-W08-memory-2.svg": the week is the name's first eight characters.
        let Some(week) = name
            .strip_suffix(".svg")
            .and_then(|s| s.get(..8))
            .filter(|w| w.as_bytes().get(4..6) == Some(b"-W"))
            .map(str::to_string)
        else {
            continue;
        };
        let target = output.site().join("digests").join(&name);
        let bytes = std::fs::read(entry.path()).map_err(|e| Error::Io {
            path: entry.path(),
            source: e,
        })?;
        fsutil::write_atomic(&target, &bytes, output.mode)?;
        charts.entry(week).or_default().push(name);
    }
    let index = index_body(output, fleet, tz, ledger, now, (&months, &digests, &charts))?;
    write(
        output,
        &output.site().join("index.html"),
        &page(&format!("{fleet} — patrol"), 0, &index),
    )
}

/// The index: score card, open findings by severity, latest sections, digests, charts.
fn index_body(
    output: &Output,
    fleet: &str,
    tz: Tz,
    ledger: &Ledger,
    now: DateTime<Utc>,
    (months, digests, charts): (&[String], &[String], &BTreeMap<String, Vec<String>>),
) -> Result<String> {
    let mut html = format!(
        "<h1>{}</h1>\n<p>As of patrol's analysis of the captures at {} ({}).</p>\n",
        escape_xml(fleet),
        now.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
        tz.name()
    );
    html.push_str("<h2 id=\"score-card\">Score card</h2>\n");
    if ledger.score_card.is_empty() {
        html.push_str("<p>No node scored yet.</p>\n");
    } else {
        html.push_str(
            "<table><thead><tr><th>node</th><th>score</th><th>weakest</th></tr></thead><tbody>\n",
        );
        for r in &ledger.score_card {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape_xml(&r.node),
                r.score
                    .map(|s| format!("{s}/100"))
                    .unwrap_or_else(|| "-".into()),
                escape_xml(&r.note)
            ));
        }
        html.push_str("</tbody></table>\n");
    }
    html.push_str(&open_findings(ledger, tz));
    html.push_str("<h2 id=\"latest\">Latest sections</h2>\n");
    for path in latest_sections(output, LATEST_SECTIONS) {
        // reports/YYYY/MM/ is three folders below the output, the index none.
        html.push_str(&markdown_html_moved(&read(&path)?, 3));
    }
    if !months.is_empty() {
        let links: Vec<String> = months
            .iter()
            .rev()
            .map(|m| {
                let stem = m.trim_end_matches(".md");
                format!(
                    "<a href=\"improvements/{stem}.html\">{}</a>",
                    escape_xml(stem)
                )
            })
            .collect();
        html.push_str(&format!("<p>Monthly reports: {}</p>\n", links.join(" · ")));
    }
    html.push_str("<h2 id=\"digests\">Digests</h2>\n");
    if digests.is_empty() {
        html.push_str("<p>No weekly digest yet.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for d in digests.iter().rev() {
            let week = d.trim_end_matches(".md");
            html.push_str(&format!(
                "<li><a href=\"digests/{week}.html\">{}</a></li>\n",
                escape_xml(week)
            ));
        }
        html.push_str("</ul>\n");
    }
    if let Some((week, files)) = charts.iter().next_back() {
        html.push_str(&format!(
            "<h2 id=\"charts\">Charts of {}</h2>\n",
            escape_xml(week)
        ));
        for f in files {
            html.push_str(&format!(
                "<p><img src=\"digests/{0}\" alt=\"{0}\"></p>\n",
                escape_xml(f)
            ));
        }
    }
    Ok(html)
}

/// Open conditions by severity, newest episode first, each with since when (or since when it
/// could not be checked, as open.md says).
fn open_findings(ledger: &Ledger, tz: Tz) -> String {
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%b %-d %H:%M").to_string();
    let mut html = String::from("<h2 id=\"open\">Open findings</h2>\n");
    let open: Vec<_> = ledger
        .entries
        .values()
        .filter(|e| e.status == Status::Open && !e.finding.event)
        .collect();
    if open.is_empty() {
        html.push_str("<p>Nothing is open.</p>\n");
        return html;
    }
    for sev in [Severity::Warning, Severity::Info, Severity::Suggestion] {
        let mut of: Vec<_> = open.iter().filter(|e| e.finding.severity == sev).collect();
        if of.is_empty() {
            continue;
        }
        of.sort_by_key(|e| std::cmp::Reverse(e.episode_start()));
        let class = sev.label().to_ascii_lowercase();
        html.push_str(&format!(
            "<h3 class=\"{class}\">{} ({})</h3>\n<ul>\n",
            sev.label(),
            of.len()
        ));
        for e in of {
            let title = markdown_html(&e.finding.title);
            let title = title
                .trim()
                .trim_start_matches("<p>")
                .trim_end_matches("</p>");
            let since = match e.unchecked_since {
                Some(u) => format!("could not check since {}", local(u)),
                None => format!("since {}", local(e.episode_start())),
            };
            let ack = if e.acknowledged { ", acknowledged" } else { "" };
            html.push_str(&format!(
                "<li class=\"{class}\">{title} ({since}{ack})</li>\n"
            ));
        }
        html.push_str("</ul>\n");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_the_markdown_is_shown_as_text_never_run() {
        let html = markdown_html("log line <script>alert(1)</script> and <img src=x onerror=y>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn links_to_markdown_point_at_their_pages_and_climb_as_far_as_the_page_is_up() {
        let html = markdown_html(
            "[open](../open.md) [chart](2026-W08-memory.svg) [web](https://x.example/a.md)",
        );
        assert!(html.contains("href=\"../open.html\""), "{html}");
        assert!(html.contains("href=\"2026-W08-memory.svg\""), "{html}");
        assert!(html.contains("href=\"https://x.example/a.md\""), "{html}");
        let moved = markdown_html_moved("[open](../../../open.md) [same](x.md)", 3);
        assert!(moved.contains("href=\"open.html\""), "{moved}");
        assert!(moved.contains("href=\"x.html\""), "{moved}");
    }
}
