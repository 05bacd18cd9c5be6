//! Telegram delivery of the weekly digest: a compact HTML message (only the tags the Bot API
//! accepts, fleet text escaped), split under 4,096 characters without ever cutting a tag or an
//! entity, kept in an outbox on disk until Telegram has it, and sent exactly once.
//!
//! Each message of the outbox moves `pending` → `sending` → `sent` (or `refused`), saved before
//! and after the request, and one sender works at a time (a lock in the outbox). A request that
//! got no answer (a timeout, a lost connection, a 5xx) may still have been delivered, so it is
//! never simply repeated: patrol sends the message again silently, then reads the few messages
//! between the newest id it knew and that copy — by forwarding each to the same chat and
//! deleting the forward, which changes nothing patrol did not send — and when one of them is the
//! message, deletes its own copy. A message Telegram refuses as HTML goes as plain text; refused
//! again, it is reported and skipped, so one bad message never holds the later ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::tls::TlsOptions;

/// The Bot API's limit on one message's text.
pub const MESSAGE_LIMIT: usize = 4096;

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
const ALLOWED_TAGS: &[&str] = &[
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
enum Atom<'a> {
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
fn atoms(html: &str) -> Vec<Atom<'_>> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    /// Sent, but whether Telegram has it is not known (no answer, or the run died).
    Sending,
    Sent,
    /// Telegram refused it in HTML and as plain text: reported, and skipped so it never blocks
    /// the messages after it.
    Refused,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
    /// The newest id patrol knew in the chat before the first attempt: an earlier copy of this
    /// message can only have an id above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Sent as plain text because Telegram refused the HTML.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain: bool,
    /// Why Telegram refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Message {
    fn pending(text: String) -> Message {
        Message {
            text,
            state: State::Pending,
            message_id: None,
            after: None,
            plain: false,
            error: None,
        }
    }
}

/// One digest waiting to be delivered, in `<output>/outbox/<week>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outbox {
    pub week: String,
    pub chat_id: String,
    pub messages: Vec<Message>,
}

/// Per chat, the newest message id Telegram gave patrol: `<output>/outbox/chats.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Chats {
    pub last_message_id: BTreeMap<String, i64>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::bad_file(path, format!("line {}: {e}", e.line()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fsutil::io_error(path, e)),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Usage(format!("cannot serialise {}: {e}", path.display())))?;
    fsutil::write_atomic(path, &bytes, fsutil::Mode::Private)
}

/// Where a fleet's outbox lives.
pub struct Mailroom {
    pub dir: PathBuf,
}

impl Mailroom {
    pub fn new(output: &Path) -> Mailroom {
        Mailroom {
            dir: output.join("outbox"),
        }
    }

    fn outbox_path(&self, week: &str) -> PathBuf {
        self.dir.join(format!("{week}.json"))
    }

    /// Puts a digest in the outbox, unless it is there already (then its progress is kept).
    pub fn post(&self, week: &str, chat_id: &str, texts: Vec<String>) -> Result<()> {
        let path = self.outbox_path(week);
        if path.exists() {
            return Ok(());
        }
        let outbox = Outbox {
            week: week.to_string(),
            chat_id: chat_id.to_string(),
            messages: texts.into_iter().map(Message::pending).collect(),
        };
        write_json(&path, &outbox)
    }

    /// Outboxes with messages still to deliver, oldest week first.
    pub fn undelivered(&self) -> Result<Vec<Outbox>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_stem().is_some_and(|s| s != "chats")
            })
            .collect();
        paths.sort();
        for p in paths {
            if let Some(o) = read_json::<Outbox>(&p)?
                && o.messages
                    .iter()
                    .any(|m| matches!(m.state, State::Pending | State::Sending))
            {
                out.push(o);
            }
        }
        Ok(out)
    }

    fn save(&self, outbox: &Outbox) -> Result<()> {
        write_json(&self.outbox_path(&outbox.week), outbox)
    }

    fn chats(&self) -> Result<Chats> {
        Ok(read_json(&self.dir.join("chats.json"))?.unwrap_or_default())
    }

    fn save_chats(&self, chats: &Chats) -> Result<()> {
        write_json(&self.dir.join("chats.json"), chats)
    }
}

/// How to reach the Bot API.
#[derive(Clone)]
pub struct Bot {
    pub api_base: String,
    pub token: String,
    pub chat_id: String,
    /// Attempts per message and run for failures that are worth another try.
    pub attempts: u32,
    pub backoff: Duration,
    /// Longest `retry_after` patrol waits for; a longer one leaves the message for the next run.
    pub max_retry_after: Duration,
    /// How long one request may take, answer included. Telegram answers in well under a
    /// second; a slow answer is waited for rather than taken as a failure.
    pub request_timeout: Duration,
    pub tls: TlsOptions,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("api_base", &self.api_base)
            .field("token", &"<redacted>")
            .field("chat_id", &self.chat_id)
            .finish()
    }
}

/// What one delivery run did.
#[derive(Debug, Default)]
pub struct Delivery {
    pub sent: usize,
    /// Messages found already delivered by an earlier attempt whose answer was lost.
    pub recovered: usize,
    /// Messages Telegram refused even as plain text: skipped, each with its error.
    pub refused: usize,
    pub left: usize,
    pub errors: Vec<String>,
}

enum Answer {
    Ok(serde_json::Value),
    /// 429: wait this long.
    RetryAfter(u64),
    /// The request never reached the server (no connection): safe to send again.
    NotSent(String),
    /// The request may have been acted on, but no answer came (timeout, connection lost, a
    /// 5xx from a proxy): sending again could make a copy.
    Unknown(String),
    /// A refusal, with Telegram's HTTP status and description.
    Refused(u16, String),
}

/// What a refusal says about whom: the message (its HTML, its length) or the delivery (token,
/// chat, rights), which no other message would get past either.
fn refusal_is_the_messages(status: u16, description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    status == 400
        && (d.contains("parse entities")
            || d.contains("too long")
            || d.contains("text must be non-empty")
            || d.contains("unsupported")
            || d.contains("can't parse"))
}

impl Bot {
    fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.api_base.trim_end_matches('/'),
            self.token
        )
    }

    /// The endpoint as it may be printed: never the token.
    fn shown(&self, method: &str) -> String {
        format!(
            "{}/bot<token>/{method}",
            self.api_base.trim_end_matches('/')
        )
    }

    async fn call(
        &self,
        client: &reqwest::Client,
        method: &str,
        body: &serde_json::Value,
    ) -> Answer {
        let resp = match client.post(self.method_url(method)).json(body).send().await {
            Ok(r) => r,
            Err(e) => {
                // reqwest's message can contain the URL, and so the token.
                let connect = e.is_connect();
                let text = crate::error::with_causes(&e.without_url());
                let text = format!("{}: {text}", self.shown(method));
                return if connect {
                    Answer::NotSent(text)
                } else {
                    Answer::Unknown(text)
                };
            }
        };
        let status = resp.status();
        let json: serde_json::Value = match resp.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            Err(e) => {
                return Answer::Unknown(format!(
                    "{}: HTTP {status}, the answer was cut: {}",
                    self.shown(method),
                    crate::error::with_causes(&e.without_url())
                ));
            }
        };
        // The server's words are shown, never obeyed: a hostile or broken server could echo the
        // token or send terminal escapes.
        let description: String = json
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .replace(self.token.as_str(), "<token>")
            .chars()
            .take(500)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if status.as_u16() == 429 {
            let after = json
                .pointer("/parameters/retry_after")
                .and_then(|v| v.as_u64())
                .unwrap_or(1);
            return Answer::RetryAfter(after);
        }
        if status.is_server_error() {
            return Answer::Unknown(format!(
                "{}: HTTP {status} {description}",
                self.shown(method)
            ));
        }
        if json.get("ok").and_then(|v| v.as_bool()) == Some(true) {
            return Answer::Ok(json);
        }
        if status.is_success() {
            return Answer::Unknown(format!(
                "{}: HTTP {status} without a Bot API answer",
                self.shown(method)
            ));
        }
        Answer::Refused(
            status.as_u16(),
            format!("{}: HTTP {status} {description}", self.shown(method)),
        )
    }

    /// Calls a method until it gives a definite answer: retries what never reached Telegram
    /// (with backoff) and waits out 429s. An unknown outcome is returned as it is, never retried
    /// here: for `sendMessage` that would risk a copy.
    async fn call_until_definite(
        &self,
        client: &reqwest::Client,
        method: &str,
        body: &serde_json::Value,
    ) -> Answer {
        let mut delay = self.backoff;
        let (mut failures, mut rate_limits) = (0, 0);
        loop {
            match self.call(client, method, body).await {
                Answer::RetryAfter(secs) => {
                    // Telegram said when to come back: not a failure, but a run does not wait
                    // for ever either.
                    rate_limits += 1;
                    let wait = Duration::from_secs(secs);
                    if wait > self.max_retry_after || rate_limits > 5 {
                        return Answer::NotSent(format!(
                            "{}: rate limited (retry after {secs} s)",
                            self.shown(method)
                        ));
                    }
                    tokio::time::sleep(wait).await;
                }
                Answer::NotSent(e) => {
                    failures += 1;
                    if failures >= self.attempts.max(1) {
                        return Answer::NotSent(e);
                    }
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                definite => return definite,
            }
        }
    }

    fn send_body(&self, chat_id: &str, text: &str, plain: bool, silent: bool) -> serde_json::Value {
        let mut body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
            "link_preview_options": {"is_disabled": true},
            "disable_notification": silent,
        });
        if !plain {
            body["parse_mode"] = "HTML".into();
        }
        body
    }

    /// The text of message `id` of the chat, read without changing it: patrol forwards it to
    /// the same chat, silently, reads the copy and deletes the copy (a message patrol sent).
    /// `None` when there is no such message or it cannot be forwarded.
    async fn read_message(
        &self,
        client: &reqwest::Client,
        chat_id: &str,
        id: i64,
    ) -> std::result::Result<Option<String>, String> {
        let body = serde_json::json!({
            "chat_id": chat_id,
            "from_chat_id": chat_id,
            "message_id": id,
            "disable_notification": true,
        });
        match self
            .call_until_definite(client, "forwardMessage", &body)
            .await
        {
            Answer::Ok(answer) => {
                let text = answer
                    .pointer("/result/text")
                    .and_then(|t| t.as_str())
                    .map(str::to_string);
                if let Some(copy) = answer
                    .pointer("/result/message_id")
                    .and_then(|v| v.as_i64())
                {
                    let delete = serde_json::json!({"chat_id": chat_id, "message_id": copy});
                    if let Answer::Refused(_, e) | Answer::Unknown(e) | Answer::NotSent(e) = self
                        .call_until_definite(client, "deleteMessage", &delete)
                        .await
                    {
                        return Err(format!(
                            "a silent copy made to read message {id} was left in the chat: {e}"
                        ));
                    }
                }
                Ok(Some(text.unwrap_or_default()))
            }
            // Gone or never there: not the message looked for.
            Answer::Refused(_, e) if e.contains("not found") => Ok(None),
            // A chat that protects its content cannot be read this way.
            Answer::Refused(_, e) => Err(e),
            Answer::Unknown(e) | Answer::NotSent(e) => Err(e),
            Answer::RetryAfter(_) => Err(format!("{}: rate limited", self.shown("forwardMessage"))),
        }
    }
}

/// What became of one message.
enum Outcome {
    Delivered {
        id: Option<i64>,
        recovered: bool,
    },
    /// Not delivered: try again in a later run.
    Later(String),
    /// Telegram has it maybe: left `sending` for the next run to settle.
    Unsettled(String),
    /// Refused as HTML and as plain text.
    Refused(String),
    /// A refusal about the chat or token: nothing else can go either.
    Blocked(String),
}

/// Sends one message: HTML first, plain text when Telegram refuses the HTML.
async fn send_new(
    bot: &Bot,
    client: &reqwest::Client,
    chat_id: &str,
    message: &mut Message,
) -> Outcome {
    loop {
        let text = if message.plain {
            to_plain(&message.text)
        } else {
            message.text.clone()
        };
        let body = bot.send_body(chat_id, &text, message.plain, false);
        return match bot.call_until_definite(client, "sendMessage", &body).await {
            Answer::Ok(answer) => {
                // `PATROL_TEST_CRASH=after-send`: Telegram has it, patrol has not recorded it.
                fsutil::crash_point("after-send");
                Outcome::Delivered {
                    id: answer
                        .pointer("/result/message_id")
                        .and_then(|v| v.as_i64()),
                    recovered: false,
                }
            }
            Answer::Refused(status, e) if refusal_is_the_messages(status, &e) => {
                if message.plain {
                    Outcome::Refused(e)
                } else {
                    message.plain = true;
                    continue;
                }
            }
            Answer::Refused(_, e) => Outcome::Blocked(e),
            Answer::NotSent(e) => Outcome::Later(e),
            Answer::RetryAfter(secs) => Outcome::Later(format!("rate limited ({secs} s)")),
            Answer::Unknown(e) => Outcome::Unsettled(e),
        };
    }
}

/// Settles a message whose earlier attempt got no answer, without ever changing a message
/// patrol did not send: it sends the message again (silently), then reads the messages between
/// the newest one it knew before the first attempt and this copy; when one of them is the
/// message, the copy is deleted and the earlier one kept.
async fn settle(
    bot: &Bot,
    client: &reqwest::Client,
    chat_id: &str,
    message: &mut Message,
    warnings: &mut Vec<String>,
) -> Outcome {
    let text = if message.plain {
        to_plain(&message.text)
    } else {
        message.text.clone()
    };
    let body = bot.send_body(chat_id, &text, message.plain, true);
    let copy = match bot.call_until_definite(client, "sendMessage", &body).await {
        Answer::Ok(answer) => answer
            .pointer("/result/message_id")
            .and_then(|v| v.as_i64()),
        Answer::Refused(status, e) if refusal_is_the_messages(status, &e) && !message.plain => {
            // The HTML was refused, so the earlier attempt was refused too: not delivered.
            message.plain = true;
            return send_new(bot, client, chat_id, message).await;
        }
        Answer::Refused(status, e) if refusal_is_the_messages(status, &e) => {
            return Outcome::Refused(e);
        }
        Answer::Refused(_, e) => return Outcome::Blocked(e),
        Answer::NotSent(e) => return Outcome::Unsettled(e),
        Answer::RetryAfter(secs) => return Outcome::Unsettled(format!("rate limited ({secs} s)")),
        Answer::Unknown(e) => return Outcome::Unsettled(e),
    };
    let Some(copy) = copy else {
        return Outcome::Delivered {
            id: None,
            recovered: false,
        };
    };
    // Ids in a chat only grow: earlier copies lie between the last id known and this one.
    // Each unanswered attempt may have left one; the oldest is kept, the others deleted.
    let lowest = message
        .after
        .map_or(copy.saturating_sub(SETTLE_LOOKBACK), |a| {
            a.saturating_add(1)
        })
        .max(copy.saturating_sub(SETTLE_LOOKBACK))
        .max(1);
    let wanted = to_plain(&message.text);
    let wanted = wanted.trim();
    let mut earlier = Vec::new();
    for candidate in (lowest..copy).rev() {
        match bot.read_message(client, chat_id, candidate).await {
            Ok(Some(text)) if text.trim() == wanted => earlier.push(candidate),
            Ok(_) => {}
            // Cannot read the chat: what was found so far is settled; an earlier copy may stay
            // beside this one, which loses nothing, and is said.
            Err(e) => {
                warnings.push(format!(
                    "message {copy} may repeat an earlier copy: the chat cannot be read to check ({e})"
                ));
                break;
            }
        }
    }
    let Some(&kept) = earlier.last() else {
        return Outcome::Delivered {
            id: Some(copy),
            recovered: false,
        };
    };
    for extra in earlier.iter().rev().skip(1).copied().chain([copy]) {
        let delete = serde_json::json!({"chat_id": chat_id, "message_id": extra});
        if let Answer::Refused(_, e) | Answer::Unknown(e) | Answer::NotSent(e) = bot
            .call_until_definite(client, "deleteMessage", &delete)
            .await
        {
            warnings.push(format!(
                "message {kept} was delivered; its copy {extra} could not be deleted: {e}"
            ));
        }
    }
    Outcome::Delivered {
        id: Some(kept),
        recovered: true,
    }
}

/// How many messages back an earlier copy is looked for when patrol knew no id in the chat.
const SETTLE_LOOKBACK: i64 = 10;

/// Delivers every undelivered message of the outbox, oldest first, one sender at a time.
pub fn deliver(mailroom: &Mailroom, bot: &Bot) -> Result<Delivery> {
    // Two senders at once (a cron digest and a hand-run one, or the daemon) would both find the
    // same message pending.
    let _sender = fsutil::RunLock::acquire(&mailroom.dir.join(".sender.lock"), SENDER_WAIT, &[])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the network runtime: {e}")))?;
    runtime.block_on(deliver_async(mailroom, bot))
}

/// How long a sender waits for another one to finish.
const SENDER_WAIT: Duration = Duration::from_secs(600);

async fn deliver_async(mailroom: &Mailroom, bot: &Bot) -> Result<Delivery> {
    let client = crate::tls::http_client(
        reqwest::Client::builder().timeout(bot.request_timeout),
        &bot.tls,
    )
    .map_err(|e| Error::Source {
        endpoint: bot.shown("sendMessage"),
        message: e,
    })?;
    let mut chats = mailroom.chats()?;
    let mut done = Delivery::default();
    let mut stop = false;
    for mut outbox in mailroom.undelivered()? {
        let chat_id = outbox.chat_id.clone();
        for i in 0..outbox.messages.len() {
            let message = &mut outbox.messages[i];
            if !matches!(message.state, State::Pending | State::Sending) {
                continue;
            }
            if stop {
                done.left += 1;
                continue;
            }
            let mut outcome = if message.state == State::Sending {
                Outcome::Unsettled(String::new())
            } else {
                message.state = State::Sending;
                message.after = chats.last_message_id.get(&chat_id).copied();
                mailroom.save(&outbox)?;
                send_new(bot, &client, &chat_id, &mut outbox.messages[i]).await
            };
            // No answer: settle it now, while the chat is fresh, a few times if need be.
            let mut delay = bot.backoff;
            for attempt in 0..bot.attempts.max(1) {
                if !matches!(outcome, Outcome::Unsettled(_)) {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                outcome = settle(
                    bot,
                    &client,
                    &chat_id,
                    &mut outbox.messages[i],
                    &mut done.errors,
                )
                .await;
            }
            let message = &mut outbox.messages[i];
            match outcome {
                Outcome::Delivered { id, recovered } => {
                    message.state = State::Sent;
                    message.message_id = id;
                    if let Some(id) = id {
                        let newest = chats.last_message_id.entry(chat_id.clone()).or_insert(id);
                        *newest = (*newest).max(id);
                    }
                    if recovered {
                        done.recovered += 1;
                    } else {
                        done.sent += 1;
                    }
                }
                Outcome::Refused(e) => {
                    message.state = State::Refused;
                    message.error = Some(e.clone());
                    done.refused += 1;
                    done.errors.push(format!(
                        "{} message {}: refused, skipped: {e}",
                        outbox.week,
                        i + 1
                    ));
                }
                Outcome::Later(e) | Outcome::Blocked(e) => {
                    // Not delivered: back to pending, and the rest waits so the order holds.
                    message.state = State::Pending;
                    done.errors.push(e);
                    done.left += 1;
                    stop = true;
                }
                Outcome::Unsettled(e) => {
                    done.errors
                        .push(format!("{e} (whether Telegram has it is settled next run)"));
                    done.left += 1;
                    stop = true;
                }
            }
            mailroom.save(&outbox)?;
            mailroom.save_chats(&chats)?;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
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
}
