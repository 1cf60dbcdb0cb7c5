//! Administration over the API: only administrators; users with their usage; a user created
//! with a first key shown once that works at once; a new key; revoking every key; the last
//! administrator stays one; the settings without secrets.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};

fn find<'a>(users: &'a Value, name: &str) -> &'a Value {
    users["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {users}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_users_and_keys() {
    let app = TestApp::new().await;
    let root = app.user("root");
    let root_id = app.state.store.find_user("root").expect("store").expect("root");
    app.state.store.set_admin(root_id, true).expect("admin");
    let ann = app.user("ann");

    let (status, body) = app.get(&ann, "/v1/admin/users").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_only"))
    );
    let (status, _) = app.send("POST", &ann, "/v1/admin/users", json!({"name": "eve"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let _workers = app.workers();
    let (_, up) = app.upload(&ann, &[("a.md", b"# A\n\nsome words to index")]).await;
    app.settled(&ann, common::doc_id(&up, 0)).await;
    let (status, users) = app.get(&root, "/v1/admin/users").await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let a = find(&users, "ann");
    assert_eq!(
        (a["documents"].as_u64(), a["active_keys"].as_u64(), a["admin"].as_bool()),
        (Some(1), Some(1), Some(false))
    );
    assert!(
        a["chunks"].as_u64().is_some_and(|c| c > 0) && a["bytes"].as_u64().is_some_and(|b| b > 0),
        "{a}"
    );
    assert_eq!(a["activity"]["documents_ready"], 1, "{a}");

    // A new user: their key is shown once and works at once.
    let (status, made) = app.send("POST", &root, "/v1/admin/users", json!({"name": " bob "})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let bob_key = made["api_key"].as_str().expect("key").to_owned();
    assert_eq!(made["user"]["name"], "bob");
    assert_eq!(app.get(&bob_key, "/v1/documents").await.0, StatusCode::OK);
    let (status, again) = app.send("POST", &root, "/v1/admin/users", json!({"name": "bob"})).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("user_exists"))
    );
    let (status, bad) = app.send("POST", &root, "/v1/admin/users", json!({"name": ""})).await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_user_name"))
    );

    // A second key, then revoking every key: both stop working.
    let bob = made["user"]["id"].as_i64().expect("id");
    let (status, second) =
        app.send("POST", &root, &format!("/v1/admin/users/{bob}/keys"), json!({})).await;
    assert_eq!((status, second["user"]["active_keys"].as_u64()), (StatusCode::CREATED, Some(2)));
    let second = second["api_key"].as_str().expect("key").to_owned();
    let (status, r) =
        app.send("POST", &root, &format!("/v1/admin/users/{bob}/revoke"), json!({})).await;
    assert_eq!((status, r["revoked"].as_u64()), (StatusCode::OK, Some(2)));
    for key in [&bob_key, &second] {
        assert_eq!(app.get(key, "/v1/documents").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.send("POST", &root, "/v1/admin/users/999/revoke", json!({})).await.0,
        StatusCode::NOT_FOUND
    );

    // Roles: the last administrator stays one.
    let path = format!("/v1/admin/users/{}", root_id.0);
    let (status, body) = app.send("PATCH", &root, &path, json!({"admin": false})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_admin"))
    );
    let (status, body) =
        app.send("PATCH", &root, &format!("/v1/admin/users/{bob}"), json!({"admin": true})).await;
    assert_eq!((status, body["admin"].as_bool()), (StatusCode::OK, Some(true)));
    let (status, body) = app.send("PATCH", &root, &path, json!({"admin": false})).await;
    assert_eq!((status, body["admin"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(app.get(&root, "/v1/admin/users").await.0, StatusCode::FORBIDDEN, "no longer one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_say_how_the_service_runs_without_secrets() {
    let app = TestApp::new().await;
    let root = app.user("root");
    let id = app.state.store.find_user("root").expect("store").expect("root");
    app.state.store.set_admin(id, true).expect("admin");
    let (status, s) = app.get(&root, "/v1/admin/settings").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(
        (s["model"]["dimensions"].as_u64(), s["vectors"].as_str()),
        (Some(64), Some("embedded"))
    );
    assert_eq!(s["search"]["default_mode"], "hybrid");
    assert!(s["limits"]["max_upload_bytes"].as_u64().is_some(), "{s}");
    assert!(!s.to_string().contains(&root), "no key in the settings");
}
