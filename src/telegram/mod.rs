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

mod bot;
mod delivery;
mod format;
mod outbox;

pub use bot::Bot;
pub use delivery::{Delivery, deliver};
pub use format::{escape, split, to_plain};
pub use outbox::{Chats, Mailroom, Message, Outbox, State};

/// The Bot API's limit on one message's text.
pub const MESSAGE_LIMIT: usize = 4096;

#[cfg(test)]
mod tests;
