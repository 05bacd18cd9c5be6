//! The Engine API client: GET requests on the engine's socket (or a TCP or forwarded one),
//! each answer read within the capture's byte budget, and errors that name the endpoint and say
//! why. A 404 is a container removed since it was listed, not a failure.

use std::time::Duration;

pub(super) struct Api {
    pub(super) client: reqwest::Client,
    pub(super) base: String,
    pub(super) endpoint: String,
    /// The source's `timeout`, which the client enforces per request.
    pub(super) timeout: Duration,
    /// What all answers of this capture may read together.
    pub(super) budget: std::sync::Arc<crate::sources::http::Budget>,
}

impl Api {
    pub(super) fn failed(&self, path: &str, e: reqwest::Error) -> String {
        if e.is_timeout() {
            format!(
                "{} GET {path}: no answer within {:?}",
                self.endpoint, self.timeout
            )
        } else {
            // The causes say why: no socket, a socket we may not open, a refused connection.
            format!(
                "{} GET {path}: {}",
                self.endpoint,
                crate::error::with_causes(&e.without_url())
            )
        }
    }

    /// The engine's answer, or `None` when it says 404: a container removed since it was
    /// listed is gone, not a failure of the engine.
    pub(super) async fn response_unless_gone(
        &self,
        path: &str,
    ) -> Result<Option<reqwest::Response>, String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.failed(path, e))?;
        let status = response.status();
        if status.is_success() {
            Ok(Some(response))
        } else if status == reqwest::StatusCode::NOT_FOUND {
            Ok(None)
        } else {
            let body = crate::sources::http::body_excerpt(response, 1024).await;
            Err(format!(
                "{} GET {path}: HTTP {status}: {body}",
                self.endpoint
            ))
        }
    }

    pub(super) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, String> {
        self.get_unless_gone(path)
            .await?
            .ok_or_else(|| format!("{} GET {path}: HTTP 404 Not Found", self.endpoint))
    }

    /// Reads and parses an answer (at most [`crate::sources::http::MAX_BODY_BYTES`]); `None` on 404.
    pub(super) async fn get_unless_gone<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, String> {
        let Some(response) = self.response_unless_gone(path).await? else {
            return Ok(None);
        };
        let what = format!("{} GET {path}", self.endpoint);
        let bytes = crate::sources::http::read_body(
            response,
            &what,
            crate::sources::http::MAX_BODY_BYTES,
            Some(&self.budget),
        )
        .await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{what}: unexpected answer: {e}"))
    }
}
