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
    use super::mask;

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
