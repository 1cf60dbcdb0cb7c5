//! Per-call latency of one short query through the local embedder, beside the encoder itself.
//!
//! ```text
//! cargo run --release -p ragmill-embed --example query_latency [-- CALLS [int8]]
//! ```
//!
//! Reads the model from `RAGMILL_MODEL_DIR` (default `models/all-MiniLM-L6-v2`). Prints p50 and
//! p99 of: the encoder called directly inside a kernel pool like the embedder's own (`encode`),
//! `Embedder::embed(vec![query])`, and `Embedder::embed_query(query)`, each over CALLS calls
//! (default 200, rounded up to tens) after a warm-up.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ragmill_core::Embedder;
use ragmill_embed::{Encode, LocalEmbedder, LocalOptions, ModelDir, NativeEncoder, Precision};

const QUERY: &str = "how do I feed a sourdough starter";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let precision = match args.next().as_deref() {
        Some("int8") => Precision::Int8,
        _ => Precision::Fp32,
    };
    let path = std::env::var_os("RAGMILL_MODEL_DIR")
        .map_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"), PathBuf::from);
    let dir = ModelDir::open(&path)?;
    let options = LocalOptions { precision, ..LocalOptions::default() };

    let pool = rayon::ThreadPoolBuilder::new().build()?;
    let mut encoder = pool.install(|| NativeEncoder::load(&dir, options.max_batch, precision))?;
    let embedder = LocalEmbedder::load(&dir, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let text = vec![QUERY.to_owned()];

    // Rounds of ten calls of each kind in turn: a noisy machine weighs on all three alike, and
    // one pool's threads, still spinning after its calls, rarely overlap the other's.
    let (mut direct, mut embed, mut query) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..calls.div_ceil(10) + 2 {
        let keep = round >= 2; // the first rounds warm caches and size buffers
        for _ in 0..10 {
            let t = Instant::now();
            pool.install(|| encoder.encode(&text))?;
            push(&mut direct, t.elapsed(), keep);
        }
        for _ in 0..10 {
            let t = Instant::now();
            runtime.block_on(embedder.embed(text.clone()))?;
            push(&mut embed, t.elapsed(), keep);
        }
        for _ in 0..10 {
            let t = Instant::now();
            runtime.block_on(embedder.embed_query(QUERY.to_owned()))?;
            push(&mut query, t.elapsed(), keep);
        }
    }
    println!(
        "{QUERY:?}, {calls} calls each, {precision}, kernels {}, {} threads",
        ragmill_embed::kernel_isa(),
        pool.current_num_threads()
    );
    let base = report("encoder.encode (direct)", &mut direct, None);
    report("Embedder::embed(vec![q])", &mut embed, Some(base));
    report("Embedder::embed_query(q)", &mut query, Some(base));
    Ok(())
}

fn push(samples: &mut Vec<Duration>, d: Duration, keep: bool) {
    if keep {
        samples.push(d);
    }
}

/// Prints p50 and p99 (and their ratio to `base`'s p50); returns the p50.
fn report(name: &str, samples: &mut [Duration], base: Option<Duration>) -> Duration {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let (p50, p99) = (at(0.5), at(0.99));
    let ratio = base.map_or(String::new(), |b| {
        format!("  (p50 {:.2}x direct)", p50.as_secs_f64() / b.as_secs_f64())
    });
    println!("{name:<28} p50 {:>7.3} ms  p99 {:>7.3} ms{ratio}", ms(p50), ms(p99));
    p50
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
