//! Reducing a log message to its template: the parts that vary between occurrences (numbers,
//! hex ids, UUIDs, IP addresses, quoted values) are masked, so thousands of lines become a
//! handful of templates with counts. Shared by the log collectors and the simulator, so that a
//! simulated archive looks exactly like a collected one.

use std::sync::OnceLock;

use regex::Regex;

struct Masks {
    uuid: Regex,
    ip: Regex,
    hex: Regex,
    quoted: Regex,
    number: Regex,
}

fn masks() -> &'static Masks {
    static MASKS: OnceLock<Masks> = OnceLock::new();
    MASKS.get_or_init(|| {
        // These patterns are constants; a failure here is a programming error caught by tests.
        let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("bad mask pattern {p}: {e}"));
        Masks {
            uuid: re(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
            ip: re(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?\b"),
            hex: re(r"\b(0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b|\b(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b"),
            quoted: re(r#""[^"]*"|'[^']*'"#),
            number: re(r"[-+]?\b\d+(\.\d+)?\b"),
        }
    })
}

/// Longest template kept, in bytes: a template is a line's shape, and a megabyte-long line must
/// not become a megabyte-long key in every snapshot.
pub const MAX_TEMPLATE_BYTES: usize = 400;

/// Cuts `text` to at most `max` bytes at the last character boundary before it. Log lines are
/// remote text in any language: cutting at a byte index inside "ç" would panic.
pub fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The template of one message.
pub fn mask(message: &str) -> String {
    let m = masks();
    let s = m.uuid.replace_all(message, "<uuid>");
    let s = m.ip.replace_all(&s, "<ip>");
    let s = m.quoted.replace_all(&s, |c: &regex::Captures| {
        let q = &c[0][..1];
        format!("{q}<*>{q}")
    });
    let s = m.hex.replace_all(&s, |c: &regex::Captures| {
        if c[0].len() >= 6 {
            "<hex>".to_string()
        } else {
            c[0].to_string()
        }
    });
    m.number.replace_all(&s, "<n>").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        // "ç" is two bytes: byte 400 falls inside it.
        let mut text = format!("{}ção falhou", "a".repeat(399));
        truncate_at_char(&mut text, MAX_TEMPLATE_BYTES);
        assert_eq!(text.len(), 399);
        let mut short = "conexão".to_string();
        truncate_at_char(&mut short, MAX_TEMPLATE_BYTES);
        assert_eq!(short, "conexão");
    }

    #[test]
    fn masks_what_varies() {
        assert_eq!(
            mask(r#"database "visionking" does not exist"#),
            r#"database "<*>" does not exist"#
        );
        assert_eq!(
            mask("connect ECONNREFUSED 10.244.70.26:4000"),
            "connect ECONNREFUSED <ip>"
        );
        assert_eq!(
            mask("bar 550e8400-e29b-41d4-a716-446655440000 took 35 ms"),
            "bar <uuid> took <n> ms"
        );
        assert_eq!(mask("commit a8399db9 applied"), "commit <hex> applied");
        assert_eq!(mask("Inicio readBar"), "Inicio readBar");
    }
}
