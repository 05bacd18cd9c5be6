use super::format::{ALLOWED_TAGS, Atom, atoms};
use super::*;

#[test]
fn escapes_only_what_html_mode_needs() {
    assert_eq!(
        escape("a < b & c > d \"e\""),
        "a &lt; b &amp; c &gt; d \"e\""
    );
}

/// Whether a message is HTML the Bot API accepts: known tags, balanced; entities whole.
fn valid_html(message: &str) -> bool {
    let mut open: Vec<&str> = Vec::new();
    for atom in atoms(message) {
        match atom {
            Atom::Open { name, .. } if ALLOWED_TAGS.contains(&name) => open.push(name),
            Atom::Open { .. } => return false,
            Atom::Close { name, .. } => {
                if open.pop() != Some(name) {
                    return false;
                }
            }
            Atom::Text(t) if t == "<" || t == ">" || t == "&" => return false,
            Atom::Text(_) => {}
        }
    }
    open.is_empty()
}

#[test]
fn a_split_never_falls_inside_a_tag_or_an_entity_and_reopens_what_was_open() {
    let long = format!("<code>{}</code>", "a &amp; b ".repeat(100));
    let lines = vec!["<b>head</b>".to_string(), long.clone(), "tail".to_string()];
    let messages = split(&lines, 300, 10);
    assert!(messages.len() > 2, "{messages:?}");
    for m in &messages {
        assert!(m.chars().count() <= 300, "{m}");
        assert!(valid_html(m), "{m}");
    }
    let joined: String = messages.iter().map(|m| to_plain(m)).collect();
    let whole: String = lines.iter().map(|l| to_plain(l)).collect();
    assert_eq!(joined.replace('\n', ""), whole);
}

#[test]
fn plain_text_decodes_entities_and_drops_tags() {
    assert_eq!(
        to_plain("<b>a &lt;b&gt; &amp; &quot;c&quot; &#233;</b>"),
        "a <b> & \"c\" é"
    );
}

mod properties {
    use super::super::*;
    use super::valid_html;
    use proptest::prelude::*;

    fn html_line() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9 ,.éçã→]{0,12}".prop_map(|t| escape(&t)),
            Just("&amp;".to_string()),
            Just("&lt;x&gt;".to_string()),
            "[a-z <&>]{0,30}".prop_map(|t| format!("<code>{}</code>", escape(&t))),
            "[a-z ]{0,20}".prop_map(|t| format!("<b>{t}</b>")),
            "[a-z ]{0,20}".prop_map(|t| format!("<a href=\"https://x/{t}\">{t}</a>")),
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every chunk is valid Bot API HTML under the limit, and the chunks together say
        /// exactly what the lines said (when they fit in the messages allowed).
        #[test]
        fn chunks_are_valid_bounded_and_lose_nothing(
            lines in proptest::collection::vec(html_line(), 0..30),
            limit in 200usize..1200,
        ) {
            let messages = split(&lines, limit, 1000);
            for m in &messages {
                prop_assert!(m.chars().count() <= limit, "{} > {limit}", m.chars().count());
                prop_assert!(valid_html(m), "{m}");
            }
            let joined: String = messages.iter().map(|m| to_plain(m)).collect::<String>();
            let whole: String = lines.iter().map(|l| to_plain(l)).collect::<String>();
            prop_assert_eq!(joined.replace('\n', ""), whole.replace('\n', ""));
        }

        #[test]
        fn a_capped_split_stays_valid_and_says_what_is_left(
            lines in proptest::collection::vec(html_line(), 1..60),
        ) {
            let messages = split(&lines, 400, 2);
            prop_assert!(messages.len() <= 2);
            for m in &messages {
                prop_assert!(m.chars().count() <= 400);
                prop_assert!(valid_html(m.split("\n+").next().unwrap_or(m)), "{m}");
            }
        }
    }
}

#[test]
fn splits_at_lines_and_names_what_is_left() {
    let lines: Vec<String> = (0..100)
        .map(|i| format!("line {i:03} {}", "x".repeat(90)))
        .collect();
    let messages = split(&lines, 1000, 3);
    assert_eq!(messages.len(), 3);
    for m in &messages {
        assert!(m.chars().count() <= 1000, "{}", m.chars().count());
    }
    assert!(
        messages[2].ends_with("more in the full digest"),
        "{}",
        messages[2]
    );
    assert!(messages[0].starts_with("line 000"));
    assert!(messages[1].starts_with(&format!("line {:03}", messages[0].lines().count())));
    let short = split(&lines[..3], 1000, 3);
    assert_eq!(short.len(), 1);
    assert!(!short[0].contains("more in the full digest"));
}
