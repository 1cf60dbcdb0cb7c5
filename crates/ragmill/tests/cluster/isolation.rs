//! Isolation across processes: three users' canary documents processed by remote workers; no
//! user's list, document, original, re-process, delete, search or filtered search reaches
//! another user's.

use serde_json::{Value, json};

use crate::{all_ready, http, upload};

/// Each of `users` (API keys) uploads a canary; then every cross-user access is refused or
/// empty, and every user still finds their own.
pub async fn three_users_see_nothing_of_each_other(base: &str, users: &[String; 3]) {
    let canary = |i: usize| format!("The canary of user {i} is word zx{i}q{i}v.");
    let mut ids = Vec::new();
    for (i, key) in users.iter().enumerate() {
        let doc = format!("# Canary\n\n{}\n", canary(i)).into_bytes();
        let id = upload(base, key, &[("canary.md", doc)]).await[0];
        ids.push(id);
    }
    for (i, key) in users.iter().enumerate() {
        all_ready(base, key, &ids[i..=i], std::time::Duration::from_secs(120)).await;
    }
    for (i, key) in users.iter().enumerate() {
        for (j, &other) in ids.iter().enumerate() {
            let query = json!({"query": canary(j), "top_k": 50});
            let r = http().post(format!("{base}/v1/search")).bearer_auth(key).json(&query).send();
            let found: Value = r.await.expect("search").json().await.expect("json");
            let texts: Vec<&str> = found["results"]
                .as_array()
                .map(|a| a.iter().filter_map(|h| h["text"].as_str()).collect())
                .unwrap_or_default();
            for (k, _) in users.iter().enumerate().filter(|(k, _)| *k != i) {
                let foreign = format!("zx{k}q{k}v");
                assert!(
                    texts.iter().all(|t| !t.contains(&foreign)),
                    "user {i} found user {k}'s canary: {texts:?}"
                );
            }
            if i == j {
                assert!(texts.iter().any(|t| t.contains(&format!("zx{i}q{i}v"))), "{found}");
                continue;
            }
            let filtered = json!({"query": canary(j), "documents": [other]});
            let r = http().post(format!("{base}/v1/search")).bearer_auth(key).json(&filtered);
            let found: Value = r.send().await.expect("search").json().await.expect("json");
            assert_eq!(found["results"], json!([]), "user {i} searched user {j}'s document");
            for (method, path) in [
                ("GET", format!("/v1/documents/{other}")),
                ("GET", format!("/v1/documents/{other}/file")),
                ("POST", format!("/v1/documents/{other}/reprocess")),
                ("DELETE", format!("/v1/documents/{other}")),
            ] {
                let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                let r = http().request(m, format!("{base}{path}")).bearer_auth(key).send();
                let status = r.await.expect("request").status();
                assert_eq!(status, 404, "user {i}: {method} {path}");
            }
        }
        let r = http().get(format!("{base}/v1/documents")).bearer_auth(key).send();
        let list: Value = r.await.expect("list").json().await.expect("json");
        let listed: Vec<i64> = list["documents"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["id"].as_i64()).collect())
            .unwrap_or_default();
        assert!(listed.contains(&ids[i]), "user {i} lists their own");
        for (j, other) in ids.iter().enumerate().filter(|(j, _)| *j != i) {
            assert!(!listed.contains(other), "user {i} lists user {j}'s document");
        }
    }
}
