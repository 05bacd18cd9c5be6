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

/// Sends a request and reads the whole answer; errors name the endpoint.
pub async fn fetch(
    request: reqwest::RequestBuilder,
    endpoint: &str,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    Ok((status, body.to_vec()))
}
