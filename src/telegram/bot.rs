//! The Bot API client: each answer sorted into delivered, rate-limited, not sent, unknown (it may
//! have been delivered) or refused, and whose fault a refusal is; the token is never printed.

use std::time::Duration;

use crate::tls::TlsOptions;

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

pub(super) enum Answer {
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
pub(super) fn refusal_is_the_messages(status: u16, description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    status == 400
        && (d.contains("parse entities")
            || d.contains("too long")
            || d.contains("text must be non-empty")
            || d.contains("unsupported")
            || d.contains("can't parse"))
}

impl Bot {
    pub(super) fn method_url(&self, method: &str) -> String {
        format!(
            "{}/bot{}/{method}",
            self.api_base.trim_end_matches('/'),
            self.token
        )
    }

    /// The endpoint as it may be printed: never the token.
    pub(super) fn shown(&self, method: &str) -> String {
        format!(
            "{}/bot<token>/{method}",
            self.api_base.trim_end_matches('/')
        )
    }

    pub(super) async fn call(
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
    pub(super) async fn call_until_definite(
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

    pub(super) fn send_body(
        &self,
        chat_id: &str,
        text: &str,
        plain: bool,
        silent: bool,
    ) -> serde_json::Value {
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
    pub(super) async fn read_message(
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
