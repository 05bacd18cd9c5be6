//! The outbox on disk: each digest's messages with their state (`pending` → `sending` →
//! `sent` or `refused`) in `<output>/outbox/<week>.json`, and per chat the newest message id
//! Telegram gave patrol, which settling an unanswered send starts from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

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
    pub(super) fn pending(text: String) -> Message {
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

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::bad_file(path, format!("line {}: {e}", e.line()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fsutil::io_error(path, e)),
    }
}

pub(super) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Runtime(format!("cannot serialise {}: {e}", path.display())))?;
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

    pub(super) fn outbox_path(&self, week: &str) -> PathBuf {
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

    pub(super) fn save(&self, outbox: &Outbox) -> Result<()> {
        write_json(&self.outbox_path(&outbox.week), outbox)
    }

    pub(super) fn chats(&self) -> Result<Chats> {
        Ok(read_json(&self.dir.join("chats.json"))?.unwrap_or_default())
    }

    pub(super) fn save_chats(&self, chats: &Chats) -> Result<()> {
        write_json(&self.dir.join("chats.json"), chats)
    }
}
