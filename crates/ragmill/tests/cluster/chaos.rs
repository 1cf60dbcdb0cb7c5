//! Chaos on the cluster: workers killed with -9 every 3 s and restarted while uploads are
//! processed, and Redis killed and restarted on its AOF once mid-run; then a document whose
//! processing kills its worker every time. Every other document ends ready, none stays
//! queued or processing, none has a chunk twice, and the poison one ends failed with a reason
//! (dead-lettered) while the work after it goes on.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::net::{Lab, Proc};
use crate::{add_user, all_ready, document, http, main_server, redis, upload, worker};

/// Text `i` of a few distinct paragraphs (a handful of chunks).
fn note(i: usize) -> Vec<u8> {
    let words = ["river", "basalt", "ember", "willow", "signal", "marble", "cobalt", "fern"];
    let mut text = format!("# Note {i}\n\n");
    for p in 0..10 {
        for w in 0..60 {
            text.push_str(words[(i * 31 + p * 7 + w * 3) % words.len()]);
            text.push(' ');
        }
        text.push_str(&format!("(note {i}, part {p})\n\n"));
    }
    text.into_bytes()
}

async fn all_documents(base: &str, key: &str) -> Vec<Value> {
    let r = http().get(format!("{base}/v1/documents")).bearer_auth(key).send().await;
    let v: Value = r.expect("list").json().await.expect("json");
    v["documents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_killed_every_3_s_and_a_redis_restart_lose_nothing_and_a_poison_document_fails() {
    let scratch = tempfile::tempdir().expect("tmp");
    let lab = Lab::new(5);
    let [redis_host, main_host, w1, w2, w3] = &lab.hosts[..] else { unreachable!() };
    let redis_dir = scratch.path().join("redis");
    std::fs::create_dir_all(&redis_dir).expect("dir");
    let mut redis_proc = redis(redis_host, &redis_dir);
    let data = scratch.path().join("main");
    let (alice, bob) = (add_user(&data, "alice"), add_user(&data, "bob"));
    let (_main, base) = main_server(main_host, &data, redis_host);
    let hosts = [w1, w2, w3];
    let mut workers: Vec<Proc> =
        hosts.iter().map(|w| worker(w, &base, redis_host, scratch.path())).collect();

    let n = 50;
    let mut ids = Vec::new();
    for (key, who) in [(&alice, "a"), (&bob, "b")] {
        for batch in 0..2 {
            let files: Vec<(String, Vec<u8>)> = (batch * n / 2..(batch + 1) * n / 2)
                .map(|i| {
                    (format!("{who}-note-{i}.md"), note(i + if who == "b" { 1000 } else { 0 }))
                })
                .collect();
            let refs: Vec<(&str, Vec<u8>)> =
                files.iter().map(|(name, b)| (name.as_str(), b.clone())).collect();
            ids.push((key.clone(), upload(&base, key, &refs).await));
        }
    }

    // Kill a worker every 3 s (round robin) and start it again; restart Redis once.
    let started = Instant::now();
    let (mut kills, mut redis_restarted) = (0, false);
    loop {
        let mut pending = 0;
        for (key, _) in [(&alice, ()), (&bob, ())] {
            pending += all_documents(&base, key)
                .await
                .iter()
                .filter(|d| d["state"] != "ready" && d["state"] != "failed")
                .count();
        }
        if pending == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "{pending} documents never finished");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let i = kills % hosts.len();
        workers[i].kill();
        workers[i] = worker(hosts[i], &base, redis_host, scratch.path());
        kills += 1;
        if kills == 3 && !redis_restarted {
            redis_proc.kill();
            redis_proc = redis(redis_host, &redis_dir);
            redis_restarted = true;
        }
    }
    eprintln!(
        "chaos: {} documents, {kills} worker kills, 1 Redis restart, {:.0} s",
        2 * n,
        started.elapsed().as_secs_f64()
    );
    let mut ready = 0;
    for (key, _) in [(&alice, ()), (&bob, ())] {
        for d in all_documents(&base, key).await {
            assert_eq!(d["state"], "ready", "every document ready: {d}");
            assert!(d["error"].is_null(), "{d}");
            ready += 1;
            // No chunk twice: a search over the document's own words returns each of its
            // chunks at most once.
            let r = http()
                .post(format!("{base}/v1/search"))
                .bearer_auth(key)
                .json(&json!({"query": "river basalt ember willow", "top_k": 50,
                              "documents": [d["id"]]}))
                .send()
                .await
                .expect("search");
            let hits: Value = r.json().await.expect("json");
            let hits = hits["results"].as_array().cloned().unwrap_or_default();
            let unique: HashSet<u64> = hits.iter().filter_map(|h| h["chunk"].as_u64()).collect();
            assert_eq!(unique.len(), hits.len(), "a chunk stored twice in {}", d["name"]);
            assert_eq!(hits.len() as u64, d["chunks"].as_u64().unwrap_or(0), "{d}");
        }
    }
    assert_eq!(ready, 2 * n);
    assert!(ids.iter().all(|(_, v)| !v.is_empty()));

    // A poison document: its worker dies whenever it is processing it. After the queue's
    // attempts it is dead-lettered and failed with the reason; the next upload goes through.
    let poison = upload(&base, &alice, &[("poison.md", note(4242))]).await[0];
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut taken = None; // `updated_at` of the last time a worker began it
    loop {
        let doc = document(&base, &alice, poison).await;
        match doc["state"].as_str() {
            Some("failed") => {
                let message = doc["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("lost"), "the reason says its workers were lost: {doc}");
                eprintln!("chaos: poison document failed: {message}");
                break;
            }
            // A worker began it (again): every worker dies, as if the document killed it.
            Some("processing") if taken != Some(doc["updated_at"].clone()) => {
                taken = Some(doc["updated_at"].clone());
                for (i, w) in workers.iter_mut().enumerate() {
                    w.kill();
                    *w = worker(hosts[i], &base, redis_host, scratch.path());
                }
            }
            Some("ready") => panic!("the poison document was processed: {doc}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the poison document never failed: {doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = upload(&base, &alice, &[("after.md", note(7))]).await;
    all_ready(&base, &alice, &after, Duration::from_secs(120)).await;
    drop(redis_proc);
}
