//! The web UI: static files compiled into the binary and served at `/` and `/assets/…`.
//!
//! Plain ES modules with no build step, so `cargo build` is all it takes and the page works
//! offline. Every answer carries a Content-Security-Policy that lets the page talk to this
//! origin only: no script, style, image or connection can go anywhere else.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

/// Where the page may load from and connect to: this origin only (`'self'` covers the
/// same-origin WebSocket), nothing inline, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, body: include_bytes!(concat!("../web/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("live.js", JS),
    asset!("util.js", JS),
    asset!("documents.js", JS),
    asset!("actions.js", JS),
    asset!("rows.js", JS),
    asset!("progress.js", JS),
    asset!("batch.js", JS),
    asset!("chat.js", JS),
    asset!("conversations.js", JS),
    asset!("admin.js", JS),
    asset!("markdown.js", JS),
    asset!("chart.js", JS),
    asset!("dashboard.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// `GET /` and `GET /assets/{name}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route("/assets/{name}", get(|Path(name): Path<String>| async move { serve(&name) }))
}

fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::not_found("asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            // Small files: always revalidate, so an upgraded binary serves its own page.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js") || a.name.ends_with(".html")) {
            let text = std::str::from_utf8(a.body).expect("utf-8");
            for part in
                text.split(['\'', '"']).filter(|p| p.starts_with("./") || p.starts_with("/assets/"))
            {
                let file = part.trim_start_matches("./").trim_start_matches("/assets/");
                assert!(
                    names.contains(&file),
                    "{} refers to {part}, which is not embedded",
                    a.name
                );
            }
        }
    }

    #[test]
    fn the_page_refers_to_no_other_origin() {
        for a in ASSETS {
            let text = String::from_utf8_lossy(a.body);
            for scheme in ["http://", "https://", "//cdn", "wss://"] {
                let hits: Vec<_> = text
                    .match_indices(scheme)
                    .map(|(i, _)| &text[i..(i + 40).min(text.len())])
                    // An example for the operator, shown as text, and the SVG namespace.
                    .filter(|s| {
                        !s.starts_with("http://localhost:11434")
                            && !s.starts_with("http://www.w3.org/2000/svg\"")
                    })
                    .collect();
                assert!(hits.is_empty(), "{} mentions {hits:?}", a.name);
            }
        }
    }
}
