//! `[telegram]`: where the weekly digest is sent, with a token and a chat that are named (an
//! environment variable or a file), never written in the config.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::tls::TlsOptions;
use crate::tomlread::{Ctx, Fields};
use crate::units::DurationRange;

use super::values::{Secret, count_in, duration, http_url, tls_options};

/// `[telegram]`: where the weekly digest goes. The token comes from the environment or a file.
#[derive(Debug, Clone)]
pub struct TelegramSettings {
    pub api_base: String,
    pub token: Secret,
    /// The chat, as written or from an environment variable.
    pub chat_id: ChatId,
    /// Attempts per message and run on network errors and 5xx, and the first backoff (doubled
    /// after each attempt).
    pub attempts: u32,
    pub backoff: Duration,
    /// `ca_file`, for a Bot API server behind a private CA (a local Bot API server).
    pub tls: TlsOptions,
    /// How long one request may take before its outcome counts as unknown.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum ChatId {
    Plain(String),
    Env(String),
}

impl TelegramSettings {
    /// The token and the chat id, read now; errors name the variable or file.
    pub fn resolve(&self) -> Result<(String, String)> {
        let token = self
            .token
            .resolve()
            .map_err(|e| Error::Usage(format!("[telegram] token: {e}")))?;
        let chat = match &self.chat_id {
            ChatId::Plain(c) => c.clone(),
            ChatId::Env(var) => std::env::var(var).map_err(|_| {
                Error::Usage(format!(
                    "[telegram] chat_id: environment variable {var} is not set"
                ))
            })?,
        };
        Ok((token.trim().to_string(), chat.trim().to_string()))
    }
}

/// `[telegram]`, or None when the table is absent or its token or chat is missing (said).
pub(super) fn telegram(f: &mut Fields, ctx: &mut Ctx, base: &Path) -> Option<TelegramSettings> {
    let mut t = f.table(ctx, "telegram", "[telegram]")?;
    let api_base = t
        .string(ctx, "api_base", false)
        .filter(|s| http_url(ctx, "[telegram]", "api_base", s))
        .map(|s| s.into_inner())
        .unwrap_or_else(|| "https://api.telegram.org".into());
    let token = token(&mut t, ctx, base);
    let chat_id = chat_id(&mut t, ctx);
    let attempts = count_in(&mut t, ctx, "attempts", 1, 20).unwrap_or(4) as u32;
    let backoff = duration(
        &mut t,
        ctx,
        "backoff",
        Duration::from_millis(500),
        DurationRange::TIMEOUT,
    );
    let tls = tls_options(&mut t, ctx, base);
    let timeout = duration(
        &mut t,
        ctx,
        "timeout",
        Duration::from_secs(60),
        DurationRange::TIMEOUT,
    );
    t.finish(ctx);
    Some(TelegramSettings {
        api_base,
        token: token?,
        chat_id: chat_id?,
        attempts,
        backoff,
        tls,
        timeout,
    })
}

/// `token_env` or `token_file`, exactly one; a written `token` is refused.
fn token(t: &mut Fields, ctx: &mut Ctx, base: &Path) -> Option<Secret> {
    let token_env = t.string(ctx, "token_env", false);
    let token_file = t.string(ctx, "token_file", false);
    if t.has("token") {
        let v = t.value("token");
        if let Some(v) = v {
            ctx.report(
                v.span(),
                "[telegram]: the bot token must not be written in the config: use `token_env` or `token_file`",
            );
        }
    }
    match (token_env, token_file) {
        (Some(e), None) => Some(Secret::Env(e.into_inner())),
        (None, Some(p)) => Some(Secret::File(base.join(p.into_inner()))),
        (Some(e), Some(_)) => {
            ctx.report(
                e.span(),
                "[telegram]: give `token_env` or `token_file`, not both",
            );
            None
        }
        (None, None) => {
            ctx.report(
                t.span.clone(),
                "[telegram] needs `token_env` (a variable holding the bot token) or `token_file`",
            );
            None
        }
    }
}

/// `chat_id` or `chat_id_env`, exactly one.
fn chat_id(t: &mut Fields, ctx: &mut Ctx) -> Option<ChatId> {
    match (
        t.string(ctx, "chat_id", false),
        t.string(ctx, "chat_id_env", false),
    ) {
        (Some(c), None) => Some(ChatId::Plain(c.into_inner())),
        (None, Some(e)) => Some(ChatId::Env(e.into_inner())),
        _ => {
            ctx.report(
                t.span.clone(),
                "[telegram] needs exactly one of `chat_id` or `chat_id_env`",
            );
            None
        }
    }
}
