//! Delivery exactly once: the outbox's messages sent oldest first by one sender at a time, a
//! refused HTML message sent again as plain text, and a send that got no answer settled by
//! reading the chat rather than repeated.

use std::time::Duration;

use super::bot::{Answer, Bot, refusal_is_the_messages};
use super::format::to_plain;
use super::outbox::{Mailroom, Message, State};
use crate::error::{Error, Result};
use crate::fsutil;

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
        .map_err(|e| Error::Runtime(format!("cannot start the network runtime: {e}")))?;
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
