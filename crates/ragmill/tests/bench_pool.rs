//! `ragmill bench pool` end to end, with small settings: it needs no model (the endpoints are
//! in-process stand-ins). Timings are only compared with generous margins.

use std::process::{Command, Output};

use serde_json::Value;

fn bench_pool(args: &[&str]) -> Output {
    // An empty working directory: no ragmill.toml is picked up.
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_ragmill"))
        .current_dir(dir.path())
        .args(["bench", "pool"])
        .args(args)
        .output()
        .expect("ragmill runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn bench_pool_reports_throughput_latency_and_failover() {
    let out = bench_pool(&["--json", "--endpoints", "1,2", "--service-ms", "20", "--calls", "40"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}"));

    assert_eq!(report["service_ms"], 20);
    assert_eq!(report["batch"], 32);
    let runs = report["throughput"].as_array().expect("throughput runs");
    assert_eq!(runs.len(), 2, "{report}");
    for (run, endpoints) in runs.iter().zip([1, 2]) {
        assert_eq!(run["endpoints"], endpoints);
        assert_eq!(run["calls"], 40);
        assert_eq!(run["failed_calls"], 0, "{run}");
        assert_eq!(number(run, "ideal_texts_per_s"), f64::from(endpoints) * 32.0 / 0.020);
        let efficiency = number(run, "efficiency");
        // Sleeps never end early, so no run beats the ideal (a little slack for rounding).
        assert!(efficiency > 0.0 && efficiency <= 1.05, "{run}");
        assert!(number(run, "p50_ms") <= number(run, "p95_ms"));
        assert!(number(run, "p95_ms") <= number(run, "p99_ms"));
    }
    let (one, two) = (number(&runs[0], "texts_per_s"), number(&runs[1], "texts_per_s"));
    assert!(two > 1.25 * one, "2 endpoints ({two:.0} texts/s) should beat 1 ({one:.0} texts/s)");

    let slow = &report["slow_endpoint"];
    assert_eq!(slow["endpoints"], 4);
    assert_eq!(slow["slowdown"], 10);
    for name in ["healthy", "slow"] {
        let run = &slow[name];
        assert_eq!(run["failed_calls"], 0, "{run}");
        for key in ["p50_ms", "p95_ms", "p99_ms", "texts_per_s", "faulty_endpoint_share"] {
            number(run, key);
        }
        assert!(run["faulty_endpoint_requests"].as_u64().is_some(), "{run}");
    }

    let dead = &report["dead_endpoint"];
    assert_eq!(dead["endpoints"], 4);
    assert_eq!(dead["calls"], 40);
    assert_eq!(dead["failed_calls"], 0, "no call fails when one endpoint dies: {dead}");
    assert!(dead["retries"].as_u64().is_some(), "{dead}");
    let killed_after = dead["killed_after_calls"].as_u64().expect("killed_after_calls");
    assert!((1..40).contains(&killed_after), "{dead}");
    assert!(number(dead, "texts_per_s_before") > 0.0 && number(dead, "texts_per_s_after") > 0.0);
}

#[test]
fn bench_pool_prints_three_tables() {
    let out = bench_pool(&["--endpoints", "1", "--service-ms", "5", "--calls", "12"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Stand-in endpoints"), "{stdout}");
    assert!(stdout.contains("no model"), "{stdout}");
    let headers = stdout.lines().filter(|l| l.starts_with("|---")).count();
    assert_eq!(headers, 3, "three Markdown tables: {stdout}");
}
