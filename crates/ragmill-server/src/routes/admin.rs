//! Administration over the API, for administrators only (403 `admin_only` for anyone else):
//! users and their keys (`/v1/admin/users...`: list with usage, create with a first key shown
//! once, a new key, revoke every key, make or unmake an administrator) and the service's
//! settings, read-only (`GET /v1/admin/settings`). What the CLI's `ragmill users` does, for the
//! web UI's administration page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use ragmill_core::UserId;
use ragmill_store::UserSummary;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorResponse, blocking};
use crate::history::now_ms;
use crate::processing::{self, Counters};
use crate::routes::ApiJson;
use crate::state::AppState;
use ragmill_store::LogTotals;

/// An authenticated administrator.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub UserId);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Auth(user) = Auth::from_request_parts(parts, state).await?;
        let store = Arc::clone(&state.store);
        if blocking(move || store.is_admin(user)).await?? {
            Ok(Admin(user))
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_only",
                "only an administrator may do this (ragmill users add NAME --admin)",
            ))
        }
    }
}

/// One user, with what they use.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AdminUser {
    /// Their id.
    pub id: i64,
    /// Their name.
    pub name: String,
    /// An administrator.
    pub admin: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Documents they own.
    pub documents: u64,
    /// Searchable chunks.
    pub chunks: u64,
    /// Bytes of their documents.
    pub bytes: u64,
    /// Keys not revoked.
    pub active_keys: u64,
    /// What their documents' processing did in the last 24 hours, from the processing log
    /// (any process's work), and this server's workers busy on them now.
    pub activity: Counters,
}

/// `GET /v1/admin/users`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AdminUsers {
    /// By name.
    pub users: Vec<AdminUser>,
}

/// A new key, shown this once: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NewKey {
    /// Its user.
    pub user: AdminUser,
    /// The key, for `Authorization: Bearer`. It cannot be shown again.
    pub api_key: String,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The name (1-128 printable characters, unique).
    pub name: String,
    /// Make them an administrator.
    #[serde(default)]
    pub admin: bool,
}

/// `PATCH /v1/admin/users/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// Administrator or not.
    pub admin: bool,
}

/// `POST /v1/admin/users/{id}/revoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Revoked {
    /// Keys that were active and are revoked now (their open event streams end within 2 s).
    pub revoked: u64,
}

/// The window of a user's `activity` in the users' list: the last 24 hours.
const ACTIVITY_WINDOW_S: u64 = 24 * 3600;

/// `u` with their processing log's totals over [`ACTIVITY_WINDOW_S`]. Blocking (SQLite).
fn with_log(
    store: &ragmill_store::Store,
    u: UserSummary,
) -> Result<(UserSummary, LogTotals), ragmill_store::StoreError> {
    let log = processing::totals(store, Some(u.id), now_ms(), ACTIVITY_WINDOW_S)?;
    Ok((u, log))
}

fn view(state: &AppState, (u, log): (UserSummary, LogTotals)) -> AdminUser {
    AdminUser {
        id: u.id.0,
        activity: Counters::new(ACTIVITY_WINDOW_S, &log, state.activity.user_busy(u.id)),
        name: u.name,
        admin: u.admin,
        created_at: u.created_at,
        documents: u.documents,
        chunks: u.chunks,
        bytes: u.bytes,
        active_keys: u.active_keys,
    }
}

/// The user `raw` names, with their summary; 404 if none.
async fn user(state: &AppState, raw: &str) -> Result<AdminUser, ApiError> {
    let id: i64 = raw.parse().map_err(|_| ApiError::not_found("user"))?;
    let store = Arc::clone(&state.store);
    let found =
        blocking(move || store.user_summary(UserId(id))?.map(|u| with_log(&store, u)).transpose())
            .await??;
    Ok(view(state, found.ok_or_else(|| ApiError::not_found("user"))?))
}

/// `GET /v1/admin/users`: every user with their usage.
#[utoipa::path(get, path = "/v1/admin/users", operation_id = "adminListUsers", tag = "admin",
    summary = "Every user with their documents, chunks, bytes, keys and activity",
    responses((status = 200, description = "The users", body = AdminUsers),
        (status = 403, description = "`admin_only`", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn users(State(state): State<AppState>, _: Admin) -> Result<Json<AdminUsers>, ApiError> {
    let store = Arc::clone(&state.store);
    let all = blocking(move || {
        store.users()?.into_iter().map(|u| with_log(&store, u)).collect::<Result<Vec<_>, _>>()
    })
    .await??;
    Ok(Json(AdminUsers { users: all.into_iter().map(|u| view(&state, u)).collect() }))
}

/// `POST /v1/admin/users`: a new user and their first key, shown once.
#[utoipa::path(post, path = "/v1/admin/users", operation_id = "adminCreateUser", tag = "admin",
    summary = "Create a user and their first API key (shown once)", request_body = NewUser,
    responses((status = 201, description = "Created", body = NewKey),
        (status = 400, description = "`invalid_user_name`", body = ErrorResponse),
        (status = 403, description = "`admin_only`", body = ErrorResponse),
        (status = 409, description = "`user_exists`", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let store = Arc::clone(&state.store);
    let name = req.name.trim().to_owned();
    let made = blocking(move || {
        if store.find_user(&name)?.is_some() {
            return Ok(None);
        }
        let id = store.ensure_user(&name)?;
        store.set_admin(id, req.admin)?;
        Ok::<_, ragmill_store::StoreError>(Some((id, store.create_api_key(id)?)))
    })
    .await?;
    let (id, api_key) = match made {
        Ok(Some(made)) => made,
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "user_exists",
                "a user of that name exists",
            ));
        }
        Err(e @ ragmill_store::StoreError::InvalidUserName(_)) => {
            return Err(ApiError::bad_request("invalid_user_name", e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let user = user(&state, &id.0.to_string()).await?;
    Ok((StatusCode::CREATED, Json(NewKey { user, api_key })))
}

/// `POST /v1/admin/users/{id}/keys`: a new key for the user, shown once.
#[utoipa::path(post, path = "/v1/admin/users/{id}/keys", operation_id = "adminNewKey", tag = "admin",
    summary = "A new API key for a user (shown once; their other keys stay)",
    params(("id" = i64, Path, description = "The user's id")),
    responses((status = 201, description = "The key", body = NewKey),
        (status = 403, description = "`admin_only`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn new_key(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let found = user(&state, &id).await?;
    let store = Arc::clone(&state.store);
    let who = UserId(found.id);
    let api_key = blocking(move || store.create_api_key(who)).await??;
    tracing::info!(admin = by.0, user = who.0, "API key created");
    let user = user(&state, &id).await?;
    Ok((StatusCode::CREATED, Json(NewKey { user, api_key })))
}

/// `POST /v1/admin/users/{id}/revoke`: revoke every key of the user.
#[utoipa::path(post, path = "/v1/admin/users/{id}/revoke", operation_id = "adminRevokeKeys", tag = "admin",
    summary = "Revoke every API key of a user (their documents stay; open streams end within 2 s)",
    params(("id" = i64, Path, description = "The user's id")),
    responses((status = 200, description = "Revoked", body = Revoked),
        (status = 403, description = "`admin_only`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let found = user(&state, &id).await?;
    let store = Arc::clone(&state.store);
    let revoked = blocking(move || store.revoke_api_keys(UserId(found.id))).await??;
    tracing::info!(admin = by.0, user = found.id, revoked, "API keys revoked");
    Ok(Json(Revoked { revoked }))
}

/// `PATCH /v1/admin/users/{id}`: make or unmake an administrator.
#[utoipa::path(patch, path = "/v1/admin/users/{id}", operation_id = "adminChangeUser", tag = "admin",
    summary = "Make a user an administrator, or not (the last administrator stays one)",
    params(("id" = i64, Path, description = "The user's id")), request_body = UserChange,
    responses((status = 200, description = "Changed", body = AdminUser),
        (status = 403, description = "`admin_only`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse),
        (status = 409, description = "`last_admin`: someone must stay an administrator", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn change(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UserChange>,
) -> Result<Json<AdminUser>, ApiError> {
    let found = user(&state, &id).await?;
    // The store refuses to demote the last administrator (409 `last_admin`), in one statement.
    let store = Arc::clone(&state.store);
    blocking(move || store.set_admin(UserId(found.id), req.admin)).await??;
    tracing::info!(admin = by.0, user = found.id, to = req.admin, "administrator role changed");
    Ok(Json(user(&state, &id).await?))
}

/// `GET /v1/admin/settings`: how this service is set up, without secrets.
#[utoipa::path(get, path = "/v1/admin/settings", operation_id = "adminSettings", tag = "admin",
    summary = "The service's settings, read-only and without secrets",
    responses((status = 200, description = "The settings", body = Object),
        (status = 403, description = "`admin_only`", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn settings(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<serde_json::Value>, ApiError> {
    let info = state.pipeline.embedder().info().clone();
    let c = &state.config;
    let retrieval = state.pipeline.retrieval();
    let mut out = serde_json::json!({
        "model": {"id": info.id, "dimensions": info.dimensions, "max_tokens": info.max_tokens},
        "vectors": state.pipeline.vector_index().map_or("embedded", |i| i.backend()),
        "search": {"default_mode": retrieval.default_mode, "vector_weight": retrieval.vector_weight,
                   "keyword_weight": retrieval.keyword_weight},
        "workers": c.workers,
        "chat": c.chat.as_ref().map(|chat| serde_json::json!({"backend": chat.backend(), "model": chat.model()})),
        "limits": {"max_upload_bytes": c.max_upload_bytes, "max_files_per_upload": c.max_files_per_upload,
                   "max_pending_per_user": c.max_pending_per_user, "rate_limit": c.rate_limit,
                   "rate_burst": c.rate_burst},
        "cluster": {"worker_routes": c.worker_key_hash.is_some()},
    });
    // What only the process that assembled the service knows (the queue, the embedding pool).
    if let (Some(out), Some(extra)) = (out.as_object_mut(), c.settings.as_object()) {
        for (k, v) in extra {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Json(out))
}
