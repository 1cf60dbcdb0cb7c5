//! `ragmill users add|list|revoke`.

use anyhow::{Result, bail};
use serde_json::json;

use crate::Status;
use crate::app;
use crate::cli::{Global, UsersCommand};
use crate::commands::print_json;

pub fn run(g: &Global, cmd: UsersCommand) -> Result<Status> {
    let store = app::store(g)?;
    match cmd {
        UsersCommand::Add { name, admin } => {
            let user = store.ensure_user(&name)?;
            if admin {
                store.set_admin(user, true)?;
            }
            let key = store.create_api_key(user)?;
            let admin = store.is_admin(user)?;
            if g.json {
                print_json(&json!({"user": name.trim(), "api_key": key, "admin": admin}));
            } else {
                let role = if admin { " (administrator)" } else { "" };
                println!("API key for {}{role}: {key}", name.trim());
                println!("Store it now: it is not kept and cannot be shown again.");
            }
        }
        UsersCommand::List => {
            let users = store.users()?;
            if g.json {
                print_json(&json!({ "users": users }));
            } else if users.is_empty() {
                println!("No users yet: `ragmill users add NAME` creates one.");
            } else {
                for u in users {
                    println!(
                        "{:24} {:>6} documents {:>3} active keys{}",
                        u.name,
                        u.documents,
                        u.active_keys,
                        if u.admin { "  admin" } else { "" }
                    );
                }
            }
        }
        UsersCommand::Revoke { name } => {
            let Some(user) = store.find_user(&name)? else {
                bail!("no user named {name:?}");
            };
            let n = store.revoke_api_keys(user)?;
            if g.json {
                print_json(&json!({"user": name, "revoked": n}));
            } else {
                println!("revoked {n} key(s) of {name}");
            }
        }
    }
    Ok(Status::Ok)
}
