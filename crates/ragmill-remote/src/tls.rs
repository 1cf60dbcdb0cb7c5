//! https (the `rustls` feature): rustls on the *ring* provider, never aws-lc-rs.
//!
//! Certificates are checked against the platform's trust store (so a private CA installed on the
//! machine works); where the system has no CA certificates at all (minimal containers), against
//! Mozilla's roots (webpki-roots) instead.

use std::sync::Arc;

use rustls_platform_verifier::BuilderVerifierExt;

use crate::error::RemoteError;

/// The TLS configuration handed to reqwest.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, RemoteError> {
    let fail = |e: rustls::Error| RemoteError::Config(format!("TLS: {e}"));
    let builder = || {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
    };
    let mut config = match builder().map_err(fail)?.with_platform_verifier() {
        Ok(b) => b.with_no_client_auth(),
        Err(e) => {
            tracing::warn!(error = %e, "no usable system trust store; checking https certificates against Mozilla's roots");
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            builder().map_err(fail)?.with_root_certificates(roots).with_no_client_auth()
        }
    };
    // reqwest is built without http2 here.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Installs rustls' *ring* provider as the process-wide default, unless one is installed
/// already. Call it at start-up in a binary built with the `rustls` feature: that feature turns
/// on reqwest's provider-less rustls for the whole build, and any `reqwest::Client` built
/// elsewhere without a TLS configuration of its own then needs a process default (it panics
/// otherwise). This crate's own clients do not need it.
pub fn install_tls_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
