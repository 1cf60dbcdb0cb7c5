//! API keys: issued once in plain text, stored only as a BLAKE3 hash.
//!
//! A key reads `rmk_<prefix>_<secret>`: the 12-hex-digit prefix is a public handle used to find
//! the row, the 64-hex-digit secret carries 256 bits of entropy. Only `blake3(key)` is stored,
//! and the comparison of hashes is constant-time (`blake3::Hash`'s `PartialEq`). A fast hash is
//! right here, unlike for passwords: nobody can guess a 256-bit secret, so slowing down each
//! guess buys nothing.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::codec::now_ms;
use crate::{Store, StoreError, UserId};

/// Who a user is: what an API key's holder may learn about themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The name.
    pub name: String,
    /// Sees the whole service's figures, not only their own.
    pub admin: bool,
}

/// A user as `ragmill users list` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    /// The user.
    pub id: UserId,
    /// The name.
    pub name: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Documents they own.
    pub documents: u64,
    /// Keys not revoked.
    pub active_keys: u64,
    /// Searchable chunks of their documents.
    pub chunks: u64,
    /// Bytes of their documents' current versions.
    pub bytes: u64,
    /// Sees the whole service's figures, not only their own.
    pub admin: bool,
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| StoreError::Corrupt(format!("no randomness available: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// Issues a new API key for `user` and returns it; it is not stored and cannot be shown again.
    pub fn create_api_key(&self, user: UserId) -> Result<String, StoreError> {
        let prefix = random_hex(6)?;
        let key = format!("rmk_{prefix}_{}", random_hex(32)?);
        let hash = blake3::hash(key.as_bytes());
        self.conn()?.execute(
            "INSERT INTO api_keys (user_id, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![user.0, prefix, hash.as_bytes().as_slice(), now_ms()],
        )?;
        Ok(key)
    }

    /// The user a key belongs to, if the key is well formed, known and not revoked. Missing,
    /// unknown, malformed and revoked keys are indistinguishable to the caller.
    pub fn authenticate(&self, key: &str) -> Result<Option<UserId>, StoreError> {
        let Some(prefix) = key.strip_prefix("rmk_").and_then(|rest| rest.split('_').next()) else {
            return Ok(None);
        };
        if prefix.len() != 12 {
            return Ok(None);
        }
        let row: Option<(i64, Vec<u8>)> = self
            .reader()?
            .query_row(
                "SELECT user_id, hash FROM api_keys WHERE prefix = ?1 AND revoked_at IS NULL",
                [prefix],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let given = blake3::hash(key.as_bytes());
        Ok(row.and_then(|(user, stored)| {
            let stored: [u8; 32] = stored.try_into().ok()?;
            (given == blake3::Hash::from_bytes(stored)).then_some(UserId(user))
        }))
    }

    /// Whether `user`'s key with `prefix` exists and is not revoked (for streams opened with
    /// it, which re-check it while they stay open).
    pub fn key_active(&self, user: UserId, prefix: &str) -> Result<bool, StoreError> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT 1 FROM api_keys WHERE user_id = ?1 AND prefix = ?2 AND revoked_at IS NULL",
                params![user.0, prefix],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Revokes every key of `user`; returns how many were active.
    pub fn revoke_api_keys(&self, user: UserId) -> Result<u64, StoreError> {
        let n = self.conn()?.execute(
            "UPDATE api_keys SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL",
            params![now_ms(), user.0],
        )?;
        Ok(n as u64)
    }

    /// Makes `user` an administrator, or not. The last administrator stays one
    /// ([`StoreError::LastAdmin`]): the check and the change are one statement, so two
    /// administrators demoting each other at once cannot leave the service without one.
    pub fn set_admin(&self, user: UserId, admin: bool) -> Result<(), StoreError> {
        let conn = self.conn()?;
        if admin {
            conn.execute("UPDATE users SET admin = 1 WHERE id = ?1", [user.0])?;
            return Ok(());
        }
        let changed = conn.execute(
            "UPDATE users SET admin = 0 WHERE id = ?1
               AND (admin = 0 OR (SELECT COUNT(*) FROM users WHERE admin = 1) > 1)",
            [user.0],
        )?;
        if changed > 0 {
            return Ok(());
        }
        // Nothing changed: an unknown user, or the last administrator.
        let is_admin: Option<bool> = conn
            .query_row("SELECT admin FROM users WHERE id = ?1", [user.0], |r| r.get(0))
            .optional()?;
        match is_admin {
            Some(true) => Err(StoreError::LastAdmin),
            _ => Ok(()),
        }
    }

    /// Whether `user` is an administrator (an unknown user is not).
    pub fn is_admin(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self.account(user)?.is_some_and(|a| a.admin))
    }

    /// `user`'s name and role, if they exist.
    pub fn account(&self, user: UserId) -> Result<Option<Account>, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT name, admin FROM users WHERE id = ?1", [user.0], |r| {
                Ok(Account { name: r.get(0)?, admin: r.get(1)? })
            })
            .optional()?)
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserSummary>, StoreError> {
        self.summaries(None)
    }

    /// One user's summary, if they exist.
    pub fn user_summary(&self, user: UserId) -> Result<Option<UserSummary>, StoreError> {
        Ok(self.summaries(Some(user))?.pop())
    }

    fn summaries(&self, only: Option<UserId>) -> Result<Vec<UserSummary>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT u.name, u.created_at,
                    (SELECT COUNT(*) FROM documents d WHERE d.user_id = u.id),
                    (SELECT COUNT(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL),
                    u.admin, u.id,
                    (SELECT COALESCE(SUM(chunk_count), 0) FROM documents d WHERE d.user_id = u.id),
                    (SELECT COALESCE(SUM(size), 0) FROM documents d WHERE d.user_id = u.id)
             FROM users u WHERE ?1 IS NULL OR u.id = ?1 ORDER BY u.name",
        )?;
        let rows = stmt.query_map([only.map(|u| u.0)], |r| {
            Ok(UserSummary {
                id: UserId(r.get(5)?),
                name: r.get(0)?,
                created_at: r.get(1)?,
                documents: r.get::<_, i64>(2)?.max(0) as u64,
                active_keys: r.get::<_, i64>(3)?.max(0) as u64,
                chunks: r.get::<_, i64>(6)?.max(0) as u64,
                bytes: r.get::<_, i64>(7)?.max(0) as u64,
                admin: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    #[test]
    fn keys_authenticate_until_revoked() {
        let (_d, store) = store();
        let alice = store.ensure_user("alice").expect("user");
        let bob = store.ensure_user("bob").expect("user");
        let (k1, k2) =
            (store.create_api_key(alice).expect("key"), store.create_api_key(alice).expect("key"));
        let kb = store.create_api_key(bob).expect("key");
        assert_ne!(k1, k2);
        assert!(k1.starts_with("rmk_") && k1.len() == 4 + 12 + 1 + 64, "{k1}");
        assert_eq!(store.authenticate(&k1).expect("auth"), Some(alice));
        assert_eq!(store.authenticate(&kb).expect("auth"), Some(bob));

        // The right prefix with a wrong secret, garbage, and empty strings are all refused.
        let forged =
            format!("{}{}", &k1[..k1.len() - 1], if k1.ends_with('0') { '1' } else { '0' });
        for bad in [forged.as_str(), "", "rmk_", "rmk_zz_zz", "Bearer x", &k1[..20]] {
            assert_eq!(store.authenticate(bad).expect("auth"), None, "{bad:?}");
        }

        assert_eq!(store.revoke_api_keys(alice).expect("revoke"), 2);
        assert_eq!(store.authenticate(&k1).expect("auth"), None);
        assert_eq!(store.authenticate(&kb).expect("auth"), Some(bob), "bob's key unaffected");

        let users = store.users().expect("users");
        assert_eq!(
            users.iter().map(|u| (u.name.as_str(), u.active_keys)).collect::<Vec<_>>(),
            [("alice", 0), ("bob", 1)]
        );
    }

    #[test]
    fn only_a_hash_is_stored() {
        let (_d, store) = store();
        let alice = store.ensure_user("alice").expect("user");
        let key = store.create_api_key(alice).expect("key");
        let secret = key.rsplit('_').next().expect("secret");
        let conn = store.conn().expect("conn");
        let (prefix, hash): (String, Vec<u8>) = conn
            .query_row("SELECT prefix, hash FROM api_keys", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("row");
        assert!(key.contains(&prefix));
        assert_eq!(hash.len(), 32);
        let dump: String = conn
            .query_row("SELECT group_concat(prefix || hex(hash)) FROM api_keys", [], |r| r.get(0))
            .expect("dump");
        assert!(!dump.to_lowercase().contains(secret), "the secret is not in the database");
    }

    #[test]
    fn a_version_1_database_gains_the_keys_table_and_admins() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = Store::open(dir.path()).expect("open");
            store.ensure_user("alice").expect("user");
            let conn = store.conn().expect("conn");
            conn.execute_batch(
                "DROP TABLE api_keys; ALTER TABLE users DROP COLUMN admin;
                 ALTER TABLE documents DROP COLUMN vector_gen; ALTER TABLE documents DROP COLUMN staged_gen;
                 ALTER TABLE documents DROP COLUMN staged_hash; DROP TABLE vector_garbage; DROP TABLE meta;
                 DROP TABLE conversation_messages; DROP TABLE conversations; DROP TABLE processing_log;
                 PRAGMA user_version = 1;",
            )
            .expect("downgrade");
        }
        let store = Store::open(dir.path()).expect("reopen migrates");
        let alice = store.find_user("alice").expect("q").expect("kept");
        let key = store.create_api_key(alice).expect("key table exists again");
        assert_eq!(store.authenticate(&key).expect("auth"), Some(alice));
        assert!(!store.is_admin(alice).expect("admin column exists again"));
    }

    #[test]
    fn only_users_made_admins_are_admins() {
        let (_d, store) = store();
        let (alice, bob) =
            (store.ensure_user("alice").expect("user"), store.ensure_user("bob").expect("user"));
        store.set_admin(bob, true).expect("set");
        assert!(!store.is_admin(alice).expect("q"));
        assert!(store.is_admin(bob).expect("q"));
        assert!(!store.is_admin(UserId(999)).expect("unknown user"), "an unknown user is not");
        assert_eq!(
            store.account(bob).expect("q"),
            Some(Account { name: "bob".into(), admin: true })
        );
        let admins: Vec<_> = store.users().expect("users").into_iter().map(|u| u.admin).collect();
        assert_eq!(admins, [false, true]);
        assert!(matches!(store.set_admin(bob, false), Err(StoreError::LastAdmin)));
        assert!(store.is_admin(bob).expect("q"), "the last administrator stays one");
        store.set_admin(alice, true).expect("set");
        store.set_admin(bob, false).expect("unset, with alice an administrator");
        assert!(!store.is_admin(bob).expect("q"));
        assert!(matches!(store.set_admin(alice, false), Err(StoreError::LastAdmin)));
        store.set_admin(bob, false).expect("a user who is not one can be told so again");
        store.set_admin(UserId(999), false).expect("an unknown user: nothing to change");
    }
}
