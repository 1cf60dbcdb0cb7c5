//! `GET /v1/documents` a page at a time: filters, order, totals, and bad parameters refused
//! in the API's error format.

mod common;

use axum::http::StatusCode;
use common::TestApp;

fn names(list: &serde_json::Value) -> Vec<&str> {
    list["documents"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["name"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_filters_and_sorts() {
    let app = TestApp::new().await;
    let key = app.user("ann");
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            (
                format!("note-{i:02}.md"),
                format!("# Note {i}\n\n{}", "word ".repeat(i + 1)).into_bytes(),
            )
        })
        .collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let (status, _) = app.upload(&key, &parts).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let other = app.user("bob");
    app.upload(&other, &[("note-99.md", b"# Bob's\n\nnot ann's")]).await;

    let (status, all) = app.get(&key, "/v1/documents").await;
    assert_eq!((status, all["total"].as_u64(), names(&all).len()), (StatusCode::OK, Some(12), 12));
    let (_, page) = app.get(&key, "/v1/documents?sort=name&order=asc&limit=5&offset=5").await;
    assert_eq!(
        names(&page),
        ["note-05.md", "note-06.md", "note-07.md", "note-08.md", "note-09.md"]
    );
    assert_eq!(page["total"], 12);
    let (_, found) = app.get(&key, "/v1/documents?q=NOTE-1&sort=name&order=asc").await;
    assert_eq!(names(&found), ["note-10.md", "note-11.md"]);
    let (_, biggest) = app.get(&key, "/v1/documents?sort=size&limit=1").await;
    assert_eq!(names(&biggest), ["note-11.md"]);
    let (_, queued) = app.get(&key, "/v1/documents?state=queued").await;
    assert_eq!(queued["total"], 12, "no worker runs: all queued");
    let (_, failed) = app.get(&key, "/v1/documents?state=error").await;
    assert_eq!(failed["total"], 0);

    for bad in ["state=lost", "sort=colour", "order=up", "limit=0", "limit=1001", "offset=-1"] {
        let (status, body) = app.get(&key, &format!("/v1/documents?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}: {body}");
    }
}
