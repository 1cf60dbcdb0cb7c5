//! Backpressure and the answers the router makes itself.
//!
//! - [`RateLimiter`]: a token bucket per API key, refilled at `--rate-limit` requests a second
//!   up to `--rate-burst`; [`rate_limit`] answers 429 `rate_limited` with `Retry-After` once a
//!   key's bucket is empty. The bucket is keyed by the BLAKE3 of the bearer key, so a flood is
//!   refused before any SQLite work, and nobody can drain a user's bucket without their key.
//! - [`head_limits`]: a URI or a header block too long answers 414 `uri_too_long` or 431
//!   `headers_too_large` in the API's format. hyper refuses heads past its own hard limits
//!   (a request target of 65,534 bytes or more, a head over ~408 KiB, more than 100 headers)
//!   before any of our code runs, with an empty body that nothing here can change; these
//!   limits sit well below those, so every head hyper lets through is judged here.
//! - [`json_errors`]: any error answer with no body (axum's 405 for a route that exists but
//!   not for this method, for one) gets the API's JSON body with a stable code.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::body::HttpBody as _;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Longest request target (path and query) answered; beyond it, 414 `uri_too_long`.
pub const MAX_URI_BYTES: usize = 16 << 10;
/// Most bytes of header names and values answered; beyond it, 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Buckets kept before full ones (equal to new ones) are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// Token buckets, one per API key.
pub struct RateLimiter {
    /// Tokens added a second.
    rate: f64,
    /// Most tokens a bucket holds: the burst a key may send at once.
    burst: f64,
    /// A std mutex: held for a few arithmetic operations, never across an `.await`.
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_second` requests a second per key, in bursts of up to `burst` (at least 1); `None`
    /// when `per_second` is 0 (no limit).
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0 && per_second.is_finite()).then(|| Self {
            rate: per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        })
    }

    /// Takes a token from `key`'s bucket at `now`; when it is empty, how long until one is back.
    pub fn check(&self, key: [u8; 32], now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| self.level(b, now) < self.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        let tokens = self.level(bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket { tokens: tokens - 1.0, at: now };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }

    /// The tokens in `bucket` at `now`.
    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Requests a second per key.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Refuses a request whose API key has used up its bucket: 429 `rate_limited`, `Retry-After`.
/// Requests without a bearer key pass (they are answered 401, or carry a single-use event token).
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &state.limiter
        && let Some(key) = crate::auth::bearer(request.headers())
        && let Err(wait) = limiter.check(*blake3::hash(key.as_bytes()).as_bytes(), Instant::now())
    {
        let message = format!(
            "more than {} requests a second with this API key; retry after the Retry-After seconds",
            limiter.rate()
        );
        return ApiError::too_many("rate_limited", message, wait).into_response();
    }
    next.run(request).await
}

/// 414 `uri_too_long` and 431 `headers_too_large` in the API's format, for heads hyper let in.
pub async fn head_limits(request: Request, next: Next) -> Response {
    let uri = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {uri} bytes; at most {MAX_URI_BYTES} are read"),
        )
        .into_response();
    }
    let headers: usize = request.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the headers are {headers} bytes; at most {MAX_HEADER_BYTES} are read"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Gives every error answer without a body the API's JSON body, keeping its headers (`Allow`).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let bodiless = response.body().size_hint().exact() == Some(0)
        && !response.headers().contains_key(header::CONTENT_TYPE);
    if !(status.is_client_error() || status.is_server_error())
        || !bodiless
        || method == Method::HEAD
    {
        return response;
    }
    let (code, message) = describe(status, &method);
    let (mut parts, _) = response.into_parts();
    let answer = ApiError::new(status, code, message).into_response();
    let (new_parts, body) = answer.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(new_parts.headers);
    Response::from_parts(parts, Body::new(body))
}

/// A stable code and a message for an error status the router answered without a body.
fn describe(status: StatusCode, method: &Method) -> (&'static str, String) {
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            return ("method_not_allowed", format!("this route does not answer {method}"));
        }
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "http_error",
    };
    (code, status.canonical_reason().unwrap_or("error").to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10.0, 3).expect("on");
        let (key, other, t0) = ([1; 32], [2; 32], Instant::now());
        for _ in 0..3 {
            assert_eq!(limiter.check(key, t0), Ok(()));
        }
        let wait = limiter.check(key, t0).expect_err("burst used");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert_eq!(limiter.check(other, t0), Ok(()), "another key has its own bucket");
        // A tenth of a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(limiter.check(key, t1), Ok(()));
        assert!(limiter.check(key, t1).is_err());
        assert!(RateLimiter::new(0.0, 10).is_none(), "0 is off");
    }

    #[test]
    fn full_buckets_are_dropped_when_there_are_many() {
        let limiter = RateLimiter::new(1000.0, 1).expect("on");
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE as u32 {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            let _ = limiter.check(key, t0);
        }
        let _ = limiter.check([9; 32], t0 + Duration::from_secs(1));
        let left = limiter.buckets.lock().map(|b| b.len()).unwrap_or(usize::MAX);
        assert!(left <= 2, "{left}");
    }
}
