//! Active health checks: a background task that, every `health_interval`, sends a tiny probe to
//! each endpoint whose circuit is open past its cool-down, so a healed endpoint rejoins the pool
//! even when no traffic would probe it.
//!
//! The task holds the pool only weakly and listens for the pool's drop: it ends as soon as the
//! [`Pool`](crate::Pool) is dropped, including in the middle of a round.

use std::sync::Weak;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::endpoint::Purpose;
use crate::pool::Inner;

pub(crate) fn spawn(pool: Weak<Inner>, mut stop: oneshot::Receiver<()>) {
    let Some(interval) = pool.upgrade().map(|p| p.config.health_interval) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(interval) => {}
            }
            let Some(inner) = pool.upgrade() else { return };
            tokio::select! {
                _ = &mut stop => return,
                () = round(&inner) => {}
            }
        }
    });
}

/// Probes, concurrently, every endpoint that waits for a probe.
async fn round(pool: &Inner) {
    let now = Instant::now();
    let probes = pool
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.probe_slot(i, now, &pool.freed))
        .map(|mut slot| async move {
            let url = slot.endpoint.url.clone();
            let result = slot
                .run(&[crate::PROBE_TEXT.to_owned()], pool.info.dimensions, Purpose::Probe)
                .await;
            if let Err(error) = result {
                tracing::debug!(endpoint = %url, %error, "health probe failed; circuit stays open");
            }
        });
    futures::future::join_all(probes).await;
}
