//! Escaping text that comes from the fleet (container names, log lines, labels) so it cannot
//! break the markdown of a report or drive the terminal that shows it.
//!
//! Fleet text is untrusted: a log line may carry a `\r` (which markdown takes as a line end, so
//! `\r## ` would forge a section), ANSI or OSC escapes (which recolour or retitle a terminal, or
//! hide a link), or characters that open emphasis, HTML or a new block. Control characters are
//! shown as their Unicode pictures (ESC as `␛`), so what was there stays visible but inert.

/// The visible stand-in for a control character, `None` for any other character. C0 controls
/// and DEL become their Unicode control pictures (`␛`, `␇`, `␍`), C1 controls `�`. So do the
/// bidirectional embeddings, overrides and isolates (U+202A–202E, U+2066–2069) and the line and
/// paragraph separators: a log line carrying U+202E would otherwise show its text reversed, so a
/// reader would see a different name or number than the one stored.
fn control_picture(c: char) -> Option<char> {
    match c as u32 {
        n @ 0x00..=0x1f => char::from_u32(0x2400 + n),
        0x7f => Some('\u{2421}'),
        0x80..=0x9f | 0x202a..=0x202e | 0x2066..=0x2069 | 0x2028 | 0x2029 => Some('\u{fffd}'),
        _ => None,
    }
}

/// `text` cut to `max` characters with an ellipsis (a chart's legend, a line on a phone).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Text for a terminal or a plain file: line feeds and tabs stay, every other control character
/// (bare `\r`, ESC of ANSI/OSC sequences, BEL…) becomes its visible picture.
pub fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c => control_picture(c).unwrap_or(c),
        })
        .collect()
}

/// One line of text for markdown: line breaks and tabs become spaces (a value must never start a
/// new block), other control characters their pictures. Markdown characters are left as they
/// are: this is for text that patrol composed, with fleet values already escaped inside.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c => control_picture(c).unwrap_or(c),
        })
        .collect()
}

/// Escapes characters that start markdown emphasis, links, HTML, entities or code, and whatever
/// would open a block (a list marker, a heading, a quote) where the text starts a line; line
/// breaks become spaces and control characters their pictures.
pub fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let c = match c {
            '\n' | '\r' | '\t' => ' ',
            c => control_picture(c).unwrap_or(c),
        };
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '&' | '~'
        ) {
            out.push('\\');
        } else if at_start && matches!(c, '-' | '+' | '=') {
            // "- x", "+ x" would open a nested list, "===" underline a heading.
            out.push('\\');
        } else if at_start && c.is_ascii_digit() {
            // "1. x" or "1) x" opens an ordered list: escape the delimiter after the digits.
            out.push(c);
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                out.push(d);
                chars.next();
            }
            if let Some(&d) = chars.peek().filter(|d| matches!(d, '.' | ')')) {
                out.push('\\');
                out.push(d);
                chars.next();
            }
            at_start = false;
            continue;
        }
        if c != ' ' {
            at_start = false;
        }
        out.push(c);
    }
    out
}

/// A code span that holds any text: the fence is longer than any run of backticks inside; line
/// breaks become spaces and control characters their pictures.
pub fn code_span(text: &str) -> String {
    let flat = one_line(text);

    let mut longest = 0;
    let mut run = 0;
    for c in flat.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 || flat.starts_with(' ') || flat.ends_with(' ') {
        format!("{fence} {flat} {fence}")
    } else {
        format!("{fence}{flat}{fence}")
    }
}

/// Text for XML/SVG/HTML: `&`, `<`, `>` and `"` escaped.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Control characters are not allowed in XML at all.
            '\n' | '\t' => out.push(c),
            c => out.push(control_picture(c).unwrap_or(c)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes() {
        assert_eq!(code_span("a`b"), "`` a`b ``");
        assert_eq!(code_span("plain"), "`plain`");
        assert_eq!(escape_inline("*bold* [x](y)"), "\\*bold\\* \\[x\\](y)");
        assert_eq!(escape_inline("- x"), "\\- x");
        assert_eq!(escape_inline("12. x"), "12\\. x");
        assert_eq!(escape_inline("a - b 1. c"), "a - b 1. c");
    }

    #[test]
    fn control_characters_become_visible_and_inert() {
        assert_eq!(one_line("a\r## b\nc"), "a ## b c");
        assert_eq!(
            plain("\x1b[31mred\x07\r\n"),
            "\u{241b}[31mred\u{2407}\u{240d}\n"
        );
        assert_eq!(code_span("x\r## y"), "`x ## y`");
        assert!(!escape_xml("a\x1b]0;t\x07").contains(['\x1b', '\x07']));
    }

    /// How many list items and headings pulldown-cmark sees in `md`.
    fn blocks(md: &str) -> (usize, usize) {
        use pulldown_cmark::{Event, Parser, Tag};
        let (mut items, mut headings) = (0, 0);
        for e in Parser::new(md) {
            match e {
                Event::Start(Tag::Item) => items += 1,
                Event::Start(Tag::Heading { .. }) => headings += 1,
                _ => {}
            }
        }
        (items, headings)
    }

    fn has_control(s: &str) -> bool {
        s.chars().any(|c| {
            c.is_control()
                || matches!(c as u32, 0x202a..=0x202e | 0x2066..=0x2069 | 0x2028 | 0x2029)
        })
    }

    /// Fleet-like text: anything, with the characters that matter to markdown and terminals
    /// made frequent.
    fn hostile() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            "\r",
            "\n",
            "\r\n",
            "\t",
            "`",
            "``",
            "|",
            "*",
            "_",
            "#",
            "## ",
            "- ",
            "+ ",
            "1. ",
            "2) ",
            "<",
            ">",
            "<b>",
            "&#27;",
            "\\",
            "[",
            "](",
            "~~~",
            "===",
            "    ",
            "\x1b[31m",
            "\x1b]0;title\x07",
            "\x1b]8;;http://x\x1b\\",
            "\u{85}",
            "\u{9b}",
            "\0",
            "\x7f",
            "\u{202e}",
            "\u{2067}",
            "\u{2028}",
        ]);
        let piece = prop_oneof![
            special.prop_map(str::to_string),
            any::<char>().prop_map(|c| c.to_string()),
            "[a-z ]{0,6}",
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn escaped_text_stays_one_list_item(s in hostile()) {
            let escaped = escape_inline(&s);
            prop_assert!(!has_control(&escaped));
            prop_assert_eq!(blocks(&format!("- {escaped}\n")), (1, 0));
            prop_assert_eq!(blocks(&format!("1. **[INFO] {escaped}** — {escaped}\n")), (1, 0));
        }

        #[test]
        fn a_code_span_stays_one_list_item(s in hostile()) {
            let span = code_span(&s);
            prop_assert!(!has_control(&span));
            prop_assert_eq!(blocks(&format!("- {span}\n")), (1, 0));
            prop_assert_eq!(blocks(&format!("- log {span} repeats\n")), (1, 0));
        }

        #[test]
        fn plain_text_keeps_only_line_feeds_and_tabs(s in hostile()) {
            let p = plain(&s);
            prop_assert!(p.chars().all(|c| !has_control(&c.to_string()) || c == '\n' || c == '\t'));
            prop_assert!(!has_control(&one_line(&s)));
        }
    }
}
