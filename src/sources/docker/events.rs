//! The engine's container events since the previous capture: how many times each container was
//! OOM-killed and exited, and its last exit code. `docker inspect` cannot tell once the restart
//! policy has started the container again (the start clears `OOMKilled` and `ExitCode`); the
//! event stream still can. Only the action, the container id, the time and the exit code are
//! deserialised: an event's attributes also carry the container's labels, which may hold values
//! taken from its environment.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::api::Api;

/// Most bytes of events one capture reads: far more than the oom and die events of a busy host
/// between two captures; past it the counts are marked short.
pub(super) const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// Longest the read may take, and at most this share of the source's timeout, so a stalled
/// stream leaves the rest of the capture its time. With `until` the engine ends the stream,
/// unless its clock is behind patrol's: it then waits for `until` by its own clock, and patrol
/// stops here with what came.
pub(super) const EVENTS_READ_TIME: Duration = Duration::from_secs(10);
const EVENTS_SHARE_OF_TIMEOUT: f64 = 0.25;

/// `{"type":["container"],"event":["oom","die"]}`, URL-encoded.
const FILTERS: &str =
    "%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22%3A%5B%22oom%22%2C%22die%22%5D%7D";

#[derive(Deserialize)]
struct Attributes {
    #[serde(rename = "exitCode")]
    exit_code: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "Attributes")]
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Action")]
    action: Option<String>,
    #[serde(rename = "Actor")]
    actor: Option<Actor>,
    #[serde(rename = "timeNano")]
    time_nano: Option<i64>,
}

/// One container's events in the span.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) oom_kills: u32,
    pub(super) exits: u32,
    pub(super) last_exit_code: Option<i64>,
}

/// The events of a span, per full container id, and why they may be short.
#[derive(Debug, Default)]
pub(super) struct Tallies {
    pub(super) by_id: BTreeMap<String, Tally>,
    pub(super) cut: Option<String>,
}

/// The engine's timestamp form: seconds and nanoseconds.
fn stamp(t: DateTime<Utc>) -> String {
    format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
}

/// Reads the oom and die events of `(since, until]`, within the size and time bounds.
pub(super) async fn read(
    api: &Api,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Tallies, String> {
    let path = format!(
        "/events?since={}&until={}&filters={FILTERS}",
        stamp(since),
        stamp(until)
    );
    let limit = EVENTS_READ_TIME.min(api.timeout.mul_f64(EVENTS_SHARE_OF_TIMEOUT));
    let deadline = tokio::time::Instant::now() + limit;
    let what = format!("{} GET /events", api.endpoint);
    let response = tokio::time::timeout_at(deadline, api.response_unless_gone(&path))
        .await
        .map_err(|_| format!("{what}: no answer within {limit:?}"))??
        .ok_or_else(|| format!("{what}: HTTP 404 Not Found"))?;
    let (body, cut) = read_bounded(response, &what, (deadline, limit), api).await?;
    let mut tallies = tally(&body, since, until);
    tallies.cut = cut.or(tallies.cut);
    Ok(tallies)
}

/// The body up to [`MAX_EVENT_BYTES`] or the deadline, and why it stopped early if it did.
async fn read_bounded(
    mut response: reqwest::Response,
    what: &str,
    (deadline, limit): (tokio::time::Instant, Duration),
    api: &Api,
) -> Result<(Vec<u8>, Option<String>), String> {
    let mut body = Vec::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Err(_) => {
                let cut = format!(
                    "{what}: the stream was still open after {limit:?} (is the node's clock behind?); counted what came"
                );
                return Ok((body, Some(cut)));
            }
            Ok(Err(e)) => return Err(api.failed("/events", e)),
            Ok(Ok(None)) => return Ok((body, None)),
            Ok(Ok(Some(chunk))) => chunk,
        };
        if body.len() + chunk.len() > MAX_EVENT_BYTES {
            let cut =
                format!("{what}: more than {MAX_EVENT_BYTES} bytes of events; counted the first");
            return Ok((body, Some(cut)));
        }
        api.budget.spend(chunk.len(), what)?;
        body.extend_from_slice(&chunk);
    }
}

/// Counts the events of a stream (one JSON object after another). Events outside the span are
/// left out, so two captures never count one event twice; an unreadable event ends the count.
fn tally(body: &[u8], since: DateTime<Utc>, until: DateTime<Utc>) -> Tallies {
    let from = since.timestamp_nanos_opt().unwrap_or(i64::MIN);
    let to = until.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut out = Tallies::default();
    for event in serde_json::Deserializer::from_slice(body).into_iter::<Event>() {
        let event = match event {
            Ok(e) => e,
            Err(e) if e.is_eof() => {
                out.cut = Some("the event stream ended inside an event".into());
                break;
            }
            Err(e) => {
                out.cut = Some(format!("an unreadable event: {e}"));
                break;
            }
        };
        if event.kind.as_deref().is_some_and(|k| k != "container") {
            continue;
        }
        let (Some(action), Some(id)) = (
            event.action,
            event.actor.as_ref().and_then(|a| a.id.clone()),
        ) else {
            continue;
        };
        if event.time_nano.is_some_and(|t| t <= from || t > to) {
            continue;
        }
        let t = out.by_id.entry(id).or_default();
        match action.as_str() {
            "oom" => t.oom_kills = t.oom_kills.saturating_add(1),
            "die" => {
                t.exits = t.exits.saturating_add(1);
                t.last_exit_code = event
                    .actor
                    .and_then(|a| a.attributes)
                    .and_then(|a| a.exit_code)
                    .and_then(|c| c.trim().parse().ok());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const ID: &str = "0123456789abcdef";

    fn event(action: &str, nanos: i64, code: Option<&str>) -> String {
        let code = code.map_or(String::new(), |c| format!(",\"exitCode\":\"{c}\""));
        format!(
            r#"{{"status":"{action}","id":"{ID}","Type":"container","Action":"{action}","Actor":{{"ID":"{ID}","Attributes":{{"image":"bb","name":"pt-oom","com.example.token":"s3cr3t-label"{code}}}}},"scope":"local","time":{},"timeNano":{nanos}}}"#,
            nanos / 1_000_000_000
        )
    }

    #[test]
    fn counts_oom_kills_exits_and_the_last_code_within_the_span() {
        let since = at("2026-11-29T20:00:00Z");
        let until = at("2026-11-29T20:15:00Z");
        let s = since.timestamp_nanos_opt().unwrap();
        let body = [
            // At `since` exactly: the previous capture counted it.
            event("die", s, Some("1")),
            event("oom", s + 60_000_000_000, None),
            event("die", s + 60_000_000_001, Some("137")),
            event("die", s + 120_000_000_000, Some("3")),
            // After `until`: the next capture's.
            event("oom", s + 901_000_000_000, None),
        ]
        .join("\n");
        let t = tally(body.as_bytes(), since, until);
        assert_eq!(
            t.by_id.get(ID),
            Some(&Tally {
                oom_kills: 1,
                exits: 2,
                last_exit_code: Some(3)
            })
        );
        assert!(t.cut.is_none());
    }

    #[test]
    fn a_stream_cut_inside_an_event_keeps_what_came_and_says_so() {
        let since = at("2026-11-29T20:00:00Z");
        let s = since.timestamp_nanos_opt().unwrap() + 1;
        let mut body = event("oom", s, None);
        body.push('\n');
        body.push_str(&event("die", s, Some("137"))[..40]);
        let t = tally(body.as_bytes(), since, at("2026-11-29T20:15:00Z"));
        assert_eq!(t.by_id.get(ID).map(|t| t.oom_kills), Some(1));
        assert!(t.cut.is_some());
    }
}
