//! Chaos on one machine: `ragmill serve` killed with -9 at pseudo-random moments while 30
//! uploads are processed, restarted each time. Every document ends ready, none is left queued
//! or processing, no chunk is stored twice, no job is left behind, and SQLite's
//! `integrity_check` passes. The moments come from a seed printed on failure.

use std::time::{Duration, Instant};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_during_uploads_loses_and_duplicates_nothing() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64 | 1);
    let mut state = seed;
    let mut next = move || {
        // xorshift64*: reproducible from the seed.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    eprintln!("crash test seed {seed}");
    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "alice");
    let args = ["--lease-secs", "2"];
    let mut server = Server::start(data.path(), &args);
    let files: Vec<(String, Vec<u8>)> =
        (0..30).map(|i| (format!("note-{i:02}.txt"), essay(i))).collect();
    let (mut kills, started) = (0, Instant::now());
    for batch in files.chunks(10) {
        let refs: Vec<(&str, Vec<u8>)> =
            batch.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        assert_eq!(upload(&server, &key, &refs).await.status(), 202, "seed {seed}");
        // Kill after 0.2–2.2 s, restart at once.
        tokio::time::sleep(Duration::from_millis(200 + next() % 2000)).await;
        server.kill();
        kills += 1;
        server = Server::start(data.path(), &args);
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200 + next() % 2000)).await;
        server.kill();
        kills += 1;
        server = Server::start(data.path(), &args);
    }
    let docs = wait_all_ready(&server, &key, 30, Duration::from_secs(240)).await;
    eprintln!(
        "crash test: {kills} kills, all 30 ready {:.0} s after the first upload",
        started.elapsed().as_secs_f64()
    );
    assert!(docs.iter().all(|d| d["error"].is_null()), "seed {seed}: {docs:#?}");
    server.kill();

    assert_stored_exactly_once(data.path(), 30, &format!("seed {seed}"));
}
