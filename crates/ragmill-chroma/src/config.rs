//! Where the Chroma server is and how to talk to it.
//!
//! As elsewhere in ragmill, a duration is a plain number of milliseconds under a name ending in
//! `_ms` (`timeout_ms = 10000`), so no duration-parsing dependency is needed.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// How to reach a Chroma server (HTTP API v2).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChromaConfig {
    /// The server's base URL, `http://host:8000` (a path prefix is kept; `/api/v2/…` is added).
    pub url: String,
    /// The tenant the collections live in; created if missing. Default `default_tenant`.
    pub tenant: String,
    /// The database within the tenant; created if missing. Default `default_database`.
    pub database: String,
    /// A token, sent as both `x-chroma-token` and `Authorization: Bearer` (Chroma's two auth
    /// header styles). Never logged or shown by `Debug`.
    pub token: Option<String>,
    /// The limit on one request, connecting included (connecting alone: 2 s). Default 10 s.
    #[serde(rename = "timeout_ms", deserialize_with = "millis")]
    pub timeout: Duration,
}

impl ChromaConfig {
    /// The server at `url`, with the default tenant, database and timeout and no token.
    pub fn new(url: impl Into<String>) -> Self {
        ChromaConfig { url: url.into(), ..ChromaConfig::default() }
    }
}

impl Default for ChromaConfig {
    fn default() -> Self {
        ChromaConfig {
            url: "http://127.0.0.1:8000".to_owned(),
            tenant: "default_tenant".to_owned(),
            database: "default_database".to_owned(),
            token: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Everything but the token.
impl std::fmt::Debug for ChromaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromaConfig")
            .field("url", &self.url)
            .field("tenant", &self.tenant)
            .field("database", &self.database)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_not_given_and_debug_hides_the_token() {
        let c: ChromaConfig =
            serde_json::from_str(r#"{"url":"http://c:8000","token":"s3cret","timeout_ms":2500}"#)
                .expect("valid config");
        assert_eq!(c.tenant, "default_tenant");
        assert_eq!(c.database, "default_database");
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(ChromaConfig::new("http://x").timeout, Duration::from_secs(10));
        assert!(serde_json::from_str::<ChromaConfig>(r#"{"urll":"x"}"#).is_err());
    }
}
