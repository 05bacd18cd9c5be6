//! Telegram's HTML: fleet text escaped, only the tags the Bot API accepts, messages split at
//! lines under the limit without ever cutting a tag or an entity (open tags are closed and
//! reopened across the cut), and the plain-text fallback.

/// `<`, `>` and `&`: the only characters the Bot API's HTML mode needs escaped. Control
/// characters other than `\n` (a `\r`, the ESC of a terminal escape) are shown as their
/// Unicode pictures (`␍`, `␛`), C1 controls as `�`: fleet text reaches chats inert.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
            }
            '\u{7f}' => out.push('\u{2421}'),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The tags the Bot API's HTML mode accepts.
pub(super) const ALLOWED_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
    "span",
];

/// One indivisible piece of a message's HTML: a tag, an entity, or one character.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Atom<'a> {
    Open { name: &'a str, raw: &'a str },
    Close { name: &'a str, raw: &'a str },
    Text(&'a str),
}

impl Atom<'_> {
    fn raw(&self) -> &str {
        match self {
            Atom::Open { raw, .. } | Atom::Close { raw, .. } | Atom::Text(raw) => raw,
        }
    }
}

/// The name of a stored opening tag (`<a href="…">` → `a`).
fn opened_name(raw: &str) -> &str {
    tag_name(raw.trim_start_matches('<').trim_end_matches('>').trim())
}

fn tag_name(inner: &str) -> &str {
    inner
        .split(|c: char| c.is_whitespace() || c == '=')
        .next()
        .unwrap_or("")
}

/// Cuts HTML into atoms, so a split never falls inside a tag (`<code>`) or an entity (`&amp;`).
/// A `<` or `&` that does not start a tag or entity is one character, as Telegram would reject
/// it anyway and the splitter must not make it worse.
pub(super) fn atoms(html: &str) -> Vec<Atom<'_>> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let take = match c {
            '<' => match rest.find('>') {
                Some(end) if !rest[1..end].contains('<') => {
                    let raw = &rest[..=end];
                    let inner = &rest[1..end];
                    if let Some(name) = inner.strip_prefix('/') {
                        out.push(Atom::Close {
                            name: tag_name(name.trim()),
                            raw,
                        });
                    } else {
                        out.push(Atom::Open {
                            name: tag_name(inner.trim()),
                            raw,
                        });
                    }
                    end + 1
                }
                _ => 0,
            },
            '&' => match rest.find(';') {
                Some(end)
                    if end > 1
                        && end <= 10
                        && rest[1..end]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '#') =>
                {
                    out.push(Atom::Text(&rest[..=end]));
                    end + 1
                }
                _ => 0,
            },
            _ => 0,
        };
        let take = if take == 0 {
            out.push(Atom::Text(&rest[..c.len_utf8()]));
            c.len_utf8()
        } else {
            take
        };
        rest = &rest[take..];
    }
    out
}

/// A message being filled: the tags open at its start are reopened, those open at its end are
/// closed, so every message is valid HTML on its own.
struct Chunk {
    text: String,
    chars: usize,
    has_body: bool,
}

impl Chunk {
    fn opening(open: &[String]) -> Chunk {
        let text: String = open.concat();
        Chunk {
            chars: text.chars().count(),
            text,
            has_body: false,
        }
    }

    fn push(&mut self, raw: &str) {
        self.text.push_str(raw);
        self.chars += raw.chars().count();
        self.has_body = true;
    }

    fn finish(self, open: &[String]) -> String {
        let mut text = self.text.trim_end_matches('\n').to_string();
        for tag in open.iter().rev() {
            text.push_str(&format!("</{}>", opened_name(tag)));
        }
        text
    }
}

/// Room kept in each message for the closing tags and the "+N more" note.
const RESERVE: usize = 120;

/// Splits lines (already HTML) into messages of at most `limit` characters, preferably at line
/// boundaries, at most `max_messages` of them. A split never falls inside a tag or an entity,
/// and tags open across a split are closed and reopened, so every message is valid HTML; a line
/// longer than a message continues in the next one; what does not fit in `max_messages` is
/// named ("+N more in the full digest"), not cut silently.
pub fn split(lines: &[String], limit: usize, max_messages: usize) -> Vec<String> {
    let budget = limit.saturating_sub(RESERVE).max(1);
    let mut messages: Vec<String> = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut current = Chunk::opening(&open);
    for (i, line) in lines.iter().enumerate() {
        let line_atoms = atoms(line);
        let line_chars = line.chars().count() + 1;
        if current.has_body && current.chars + line_chars > budget {
            if messages.len() + 1 == max_messages.max(1) {
                let note = format!("\n+{} more in the full digest", lines.len() - i);
                let mut last = current.finish(&open);
                last.push_str(&note);
                messages.push(last);
                return messages;
            }
            messages.push(std::mem::replace(&mut current, Chunk::opening(&open)).finish(&open));
        }
        for atom in &line_atoms {
            let width = atom.raw().chars().count();
            if current.has_body && current.chars + width > budget {
                if messages.len() + 1 == max_messages.max(1) {
                    let mut last = current.finish(&open);
                    last.push_str(&format!(" …\n+{} more in the full digest", lines.len() - i));
                    messages.push(last);
                    return messages;
                }
                messages.push(std::mem::replace(&mut current, Chunk::opening(&open)).finish(&open));
            }
            current.push(atom.raw());
            match atom {
                Atom::Open { name, raw } if ALLOWED_TAGS.contains(name) => {
                    open.push(raw.to_string())
                }
                Atom::Close { name, .. } => {
                    if let Some(at) = open.iter().rposition(|t| opened_name(t) == *name) {
                        open.truncate(at);
                    }
                }
                _ => {}
            }
        }
        current.push("\n");
    }
    if current.has_body {
        let last = current.finish(&open);
        if !last.trim().is_empty() {
            messages.push(last);
        }
    }
    messages
}

/// The text a reader sees of a message: tags dropped, entities decoded. Telegram answers with
/// this text for a message sent in HTML mode, and it is what patrol sends when Telegram refuses
/// the HTML.
pub fn to_plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for atom in atoms(html) {
        match atom {
            Atom::Text(t) if t.len() > 1 && t.starts_with('&') => out.push_str(&decode_entity(t)),
            Atom::Text(t) => out.push_str(t),
            Atom::Open { .. } | Atom::Close { .. } => {}
        }
    }
    out
}

fn decode_entity(entity: &str) -> String {
    let name = &entity[1..entity.len() - 1];
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    decoded.map_or_else(|| entity.to_string(), String::from)
}
