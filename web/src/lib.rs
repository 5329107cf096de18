//! The admin web UI served on the practice LAN.
//!
//! For now: the health endpoint IT and the systemd watchdog use, and a status page. Calls,
//! transcripts, bookings and settings (each PHI read audited) come with the web UI issue.

use std::sync::Arc;

use axum::{extract::State, response::Html, routing::get, Json, Router};
use serde::Serialize;

/// What the appliance reports about itself. Contains no PHI by construction: counts and versions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub version: String,
    pub practice: String,
    pub model_bundle: Option<String>,
    pub engines: Vec<EngineStatus>,
    pub sip_uri: String,
    pub active_calls: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EngineStatus {
    pub name: String,
    pub healthy: bool,
}

/// Implemented by the appliance; the web layer only reads through it.
pub trait StatusSource: Send + Sync + 'static {
    fn status(&self) -> Status;
}

pub fn router(source: Arc<dyn StatusSource>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/api/status", get(status))
        .with_state(source)
}

async fn healthz(State(s): State<Arc<dyn StatusSource>>) -> (axum::http::StatusCode, &'static str) {
    let st = s.status();
    if st.engines.iter().all(|e| e.healthy) {
        (axum::http::StatusCode::OK, "ok\n")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "degraded\n")
    }
}

async fn status(State(s): State<Arc<dyn StatusSource>>) -> Json<Status> {
    Json(s.status())
}

async fn index(State(s): State<Arc<dyn StatusSource>>) -> Html<String> {
    let st = s.status();
    let engines: String = st
        .engines
        .iter()
        .map(|e| format!("<li>{}: {}</li>", escape(&e.name), if e.healthy { "ok" } else { "DOWN" }))
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Front Desk</title></head><body>\
         <h1>Front Desk — {}</h1><p>Version {}. Model bundle: {}.</p><p>Call: <code>{}</code>. Active calls: {}.</p>\
         <h2>Engines</h2><ul>{}</ul></body></html>",
        escape(&st.practice),
        escape(&st.version),
        escape(st.model_bundle.as_deref().unwrap_or("none")),
        escape(&st.sip_uri),
        st.active_calls,
        engines
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}
