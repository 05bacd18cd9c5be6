//! HTTP endpoints: the status code (0 when nothing answered) and how long the answer took.

use std::time::{Duration, Instant};

use crate::model::Endpoint;

pub async fn probe(client: &reqwest::Client, name: &str, url: &str, timeout: Duration) -> Endpoint {
    let started = Instant::now();
    let result = client.get(url).timeout(timeout).send().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(response) => Endpoint {
            name: name.to_string(),
            url: url.to_string(),
            status: response.status().as_u16(),
            latency_ms: Some((latency_ms * 10.0).round() / 10.0),
            error: None,
        },
        Err(e) => {
            let reason = if e.is_timeout() {
                format!("no answer within {timeout:?}")
            } else if e.is_connect() {
                // The cause says whether nothing listened or the certificate was refused.
                let cause = std::error::Error::source(&e)
                    .map(crate::error::with_causes)
                    .unwrap_or_default();
                if cause.is_empty() {
                    "connection failed".to_string()
                } else {
                    format!("connection failed: {cause}")
                }
            } else {
                crate::error::with_causes(&e.without_url())
            };
            Endpoint {
                name: name.to_string(),
                url: url.to_string(),
                status: 0,
                latency_ms: None,
                error: Some(format!("{url}: {reason}")),
            }
        }
    }
}

/// Largest answer body patrol reads (a Docker container list or a RabbitMQ queue list of a
/// large node is a few megabytes): a server that sends more is cut off with an error rather
/// than allowed to fill the memory of an unattended run.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Bytes several answers read at once may hold together: each answer is capped on its own, but
/// an engine answering forty inspections at once with 60 MB each is not.
pub struct Budget {
    left: std::sync::atomic::AtomicUsize,
    total: usize,
}

impl Budget {
    pub fn new(total: usize) -> Budget {
        Budget {
            left: std::sync::atomic::AtomicUsize::new(total),
            total,
        }
    }

    pub(crate) fn spend(&self, bytes: usize, endpoint: &str) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .map(|_| ())
            .map_err(|_| {
                format!(
                    "{endpoint}: the answers of one capture passed the {} bytes patrol reads",
                    self.total
                )
            })
    }
}

/// Reads an answer's body, chunk by chunk, up to `max` bytes; more is an error naming the
/// endpoint.
pub async fn read_body(
    mut response: reqwest::Response,
    endpoint: &str,
    max: usize,
    shared: Option<&Budget>,
) -> Result<Vec<u8>, String> {
    if let Some(len) = response.content_length()
        && len > max as u64
    {
        return Err(format!(
            "{endpoint}: an answer of {len} bytes, more than the {max} patrol reads"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{endpoint}: {}", causes(e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!(
                "{endpoint}: an answer of more than the {max} bytes patrol reads"
            ));
        }
        if let Some(budget) = shared {
            budget.spend(chunk.len(), endpoint)?;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request's error with every cause under it (refused, no such host, a certificate), without
/// the URL: the message names the endpoint already, and a URL may carry credentials.
fn causes(e: reqwest::Error) -> String {
    crate::error::with_causes(&e.without_url())
}

/// The start of an error answer's body, for a message: at most `max` bytes, read leniently.
pub async fn body_excerpt(mut response: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while body.len() < max {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(max);
    String::from_utf8_lossy(&body).trim().to_string()
}

/// Sends a request and reads the whole answer (up to [`MAX_BODY_BYTES`]); errors name the
/// endpoint.
pub async fn fetch(
    request: reqwest::RequestBuilder,
    endpoint: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {}", causes(e)))?;
    let status = response.status();
    let body = read_body(response, endpoint, MAX_BODY_BYTES, None).await?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_budget_stops_answers_that_are_each_under_their_cap() {
        let budget = Budget::new(100);
        assert!(budget.spend(60, "a").is_ok());
        let err = budget.spend(60, "b").unwrap_err();
        assert!(err.starts_with("b: ") && err.contains("100 bytes"), "{err}");
        assert!(budget.spend(40, "c").is_ok());
    }

    #[test]
    fn a_refused_connection_says_refused_not_only_that_sending_failed() {
        // A port bound then released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(fetch(
                crate::tls::http_client(
                    reqwest::Client::builder(),
                    &crate::tls::TlsOptions::default(),
                )
                .unwrap()
                .get(format!("http://127.0.0.1:{port}/api")),
                "prometheus",
            ))
            .unwrap_err();
        assert!(err.starts_with("prometheus: "), "{err}");
        assert!(err.contains("Connection refused"), "{err}");
        assert!(!err.contains("/api"), "{err}");
    }
}
