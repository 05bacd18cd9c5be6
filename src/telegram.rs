//! Telegram delivery of the weekly digest: a compact HTML message (only the tags the Bot API
//! accepts, fleet text escaped), split at line boundaries under 4,096 characters, kept in an
//! outbox on disk until Telegram has it, and sent exactly once.
//!
//! Each message of the outbox moves `pending` → `sending` → `sent`, saved before and after the
//! request. A message found `sending` (the run died between Telegram's answer and the
//! bookkeeping) is first looked for: message ids in a chat only grow, so patrol tries to edit the
//! few ids after the last one it knows with the very same text; Telegram answers "message is not
//! modified" for the one that is already there, and patrol records it instead of sending twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

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

/// Splits lines (already HTML) into messages of at most `limit` characters, at line
/// boundaries, at most `max_messages` of them; what does not fit is named, not cut silently.
pub fn split(lines: &[String], limit: usize, max_messages: usize) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    let mut current = String::new();
    let len = |s: &str| s.chars().count();
    for (i, line) in lines.iter().enumerate() {
        // A single line longer than a message is shortened, with a mark.
        let line = if len(line) > limit - 40 {
            let cut: String = line.chars().take(limit - 60).collect();
            format!("{cut} … (cut)")
        } else {
            line.clone()
        };
        let needed = len(&current) + len(&line) + 1;
        if needed > limit && !current.is_empty() {
            if messages.len() + 1 == max_messages {
                let rest = lines.len() - i;
                let note = format!("+{rest} more in the full digest");
                while len(&current) + len(&note) + 1 > limit {
                    match current.trim_end_matches('\n').rfind('\n') {
                        Some(at) => current.truncate(at + 1),
                        None => break,
                    }
                }
                current.push_str(&note);
                messages.push(current);
                return messages;
            }
            messages.push(std::mem::take(&mut current).trim_end().to_string());
        }
        current.push_str(&line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        messages.push(current.trim_end().to_string());
    }
    messages
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Sending,
    Sent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
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
        Err(e) => Err(Error::io(path, e)),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Usage(format!("cannot serialise {}: {e}", path.display())))?;
    fsutil::write_atomic(path, &bytes)
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
            messages: texts
                .into_iter()
                .map(|text| Message {
                    text,
                    state: State::Pending,
                    message_id: None,
                })
                .collect(),
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
                && o.messages.iter().any(|m| m.state != State::Sent)
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
    /// Attempts per message and run for network errors and 5xx.
    pub attempts: u32,
    pub backoff: Duration,
    /// Longest `retry_after` patrol waits for; a longer one leaves the message for the next run.
    pub max_retry_after: Duration,
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
    /// Messages found already delivered by an earlier run that died before recording them.
    pub recovered: usize,
    pub left: usize,
    pub errors: Vec<String>,
}

enum Answer {
    Ok(serde_json::Value),
    /// 429: wait this long.
    RetryAfter(u64),
    /// Network error or 5xx: worth retrying.
    Transient(String),
    /// Any other refusal (bad token, bad chat, message not modified…), with its description.
    Refused(String),
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
                let text = e.without_url().to_string();
                return Answer::Transient(format!("{}: {text}", self.shown(method)));
            }
        };
        let status = resp.status();
        let json: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        let description = json
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .to_string();
        if status.as_u16() == 429 {
            let after = json
                .pointer("/parameters/retry_after")
                .and_then(|v| v.as_u64())
                .unwrap_or(1);
            return Answer::RetryAfter(after);
        }
        if status.is_server_error() {
            return Answer::Transient(format!(
                "{}: HTTP {status} {description}",
                self.shown(method)
            ));
        }
        if json.get("ok").and_then(|v| v.as_bool()) == Some(true) {
            return Answer::Ok(json);
        }
        Answer::Refused(format!(
            "{}: HTTP {status} {description}",
            self.shown(method)
        ))
    }

    /// Calls a method with retries: backoff on network errors and 5xx, `retry_after` on 429.
    async fn call_retrying(
        &self,
        client: &reqwest::Client,
        method: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<serde_json::Value, (bool, String)> {
        let mut delay = self.backoff;
        let (mut failures, mut rate_limits) = (0, 0);
        loop {
            match self.call(client, method, body).await {
                Answer::Ok(v) => return Ok(v),
                Answer::Refused(e) => return Err((false, e)),
                Answer::RetryAfter(secs) => {
                    // Telegram said when to come back: that is not a failure, but a run does
                    // not wait forever either.
                    rate_limits += 1;
                    let wait = Duration::from_secs(secs);
                    if wait > self.max_retry_after || rate_limits > 5 {
                        return Err((
                            true,
                            format!(
                                "{}: rate limited (retry after {secs} s)",
                                self.shown(method)
                            ),
                        ));
                    }
                    tokio::time::sleep(wait).await;
                }
                Answer::Transient(e) => {
                    failures += 1;
                    if failures >= self.attempts.max(1) {
                        return Err((true, e));
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }

    /// Whether a message with this exact text is already in the chat just after `after`.
    async fn find_delivered(
        &self,
        client: &reqwest::Client,
        after: i64,
        text: &str,
    ) -> Option<i64> {
        for id in after + 1..=after + 5 {
            let body = serde_json::json!({
                "chat_id": self.chat_id,
                "message_id": id,
                "text": text,
                "parse_mode": "HTML",
            });
            match self.call(client, "editMessageText", &body).await {
                Answer::Refused(e) if e.contains("message is not modified") => return Some(id),
                Answer::Ok(_) => return Some(id),
                _ => {}
            }
        }
        None
    }
}

/// Delivers every undelivered message of the outbox, oldest first.
pub fn deliver(mailroom: &Mailroom, bot: &Bot) -> Result<Delivery> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the network runtime: {e}")))?;
    runtime.block_on(deliver_async(mailroom, bot))
}

async fn deliver_async(mailroom: &Mailroom, bot: &Bot) -> Result<Delivery> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
    let mut chats = mailroom.chats()?;
    let mut done = Delivery::default();
    let mut stop = false;
    for mut outbox in mailroom.undelivered()? {
        for i in 0..outbox.messages.len() {
            if outbox.messages[i].state == State::Sent {
                continue;
            }
            if stop {
                done.left += 1;
                continue;
            }
            let text = outbox.messages[i].text.clone();
            let last = chats.last_message_id.get(&outbox.chat_id).copied();
            if outbox.messages[i].state == State::Sending
                && let Some(after) = last
                && let Some(id) = bot.find_delivered(&client, after, &text).await
            {
                outbox.messages[i].state = State::Sent;
                outbox.messages[i].message_id = Some(id);
                chats.last_message_id.insert(outbox.chat_id.clone(), id);
                mailroom.save(&outbox)?;
                mailroom.save_chats(&chats)?;
                done.recovered += 1;
                continue;
            }
            outbox.messages[i].state = State::Sending;
            mailroom.save(&outbox)?;
            let body = serde_json::json!({
                "chat_id": outbox.chat_id,
                "text": text,
                "parse_mode": "HTML",
                "disable_web_page_preview": true,
            });
            match bot.call_retrying(&client, "sendMessage", &body).await {
                Ok(answer) => {
                    // `PATROL_TEST_CRASH=after-send`: Telegram has it, patrol has not recorded it.
                    fsutil::crash_point("after-send");
                    let id = answer
                        .pointer("/result/message_id")
                        .and_then(|v| v.as_i64());
                    outbox.messages[i].state = State::Sent;
                    outbox.messages[i].message_id = id;
                    if let Some(id) = id {
                        chats.last_message_id.insert(outbox.chat_id.clone(), id);
                    }
                    mailroom.save(&outbox)?;
                    mailroom.save_chats(&chats)?;
                    done.sent += 1;
                }
                Err((_, e)) => {
                    // Not delivered: back to pending, and the rest waits for the next run so the
                    // messages keep their order.
                    outbox.messages[i].state = State::Pending;
                    mailroom.save(&outbox)?;
                    done.errors.push(e);
                    done.left += 1;
                    stop = true;
                }
            }
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
