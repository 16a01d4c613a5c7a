//! Who is staff: the shop's servers (`SHOPKEEP_GUILDS`), and a member's guild-level
//! permissions there.
//!
//! Discord's `member.permissions` in an interaction is the member's permission in that one
//! channel (overwrites included), in whichever server the command came from, so it never
//! decides staff status. Staff status comes from the configured role ids, or from the
//! permissions the member's roles grant in the whole server (plus ownership), read from
//! `GET /guilds/{id}` and cached for [`GUILD_CACHE_TTL`]. Only the shop's own servers are
//! asked; a server that is not one of them grants nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use serenity::http::{LightMethod, Route};
use serenity::model::id::GuildId;
use serenity::model::Permissions;

use super::rest::{Body, Rest};

/// How long a server's roles and owner are reused before they are read again.
pub const GUILD_CACHE_TTL: Duration = Duration::from_secs(60);

/// A server's roles (their permission bits) and owner, as `GET /guilds/{id}` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuildRoles {
    owner_id: u64,
    /// The `@everyone` role (its id is the server's id).
    everyone: Permissions,
    roles: HashMap<u64, Permissions>,
}

impl GuildRoles {
    /// Reads a guild object; `None` when it has no `roles` list.
    pub fn from_json(guild_id: u64, guild: &Value) -> Option<Self> {
        let owner_id = guild
            .get("owner_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut roles = HashMap::new();
        for role in guild.get("roles")?.as_array()? {
            let id = role
                .get("id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            let bits = role
                .get("permissions")
                .and_then(|p| p.as_str().and_then(|s| s.parse().ok()).or(p.as_u64()));
            if let (Some(id), Some(bits)) = (id, bits) {
                roles.insert(id, Permissions::from_bits_truncate(bits));
            }
        }
        let everyone = roles.remove(&guild_id).unwrap_or_else(Permissions::empty);
        Some(Self {
            owner_id,
            everyone,
            roles,
        })
    }

    /// The server-wide permissions of `user` holding `member_roles` (no channel
    /// overwrites); the owner and Administrator have every permission.
    pub fn permissions(&self, user: u64, member_roles: &[u64]) -> Permissions {
        if user == self.owner_id {
            return Permissions::all();
        }
        let granted = member_roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .fold(self.everyone, |all, p| all | *p);
        if granted.administrator() {
            Permissions::all()
        } else {
            granted
        }
    }
}

/// A server's roles as last read (`None`: the read failed), and when.
type CachedRoles = (Instant, Option<Arc<GuildRoles>>);

/// The shop's servers' roles, read on demand and cached; cheap to share.
#[derive(Default)]
pub struct GuildPermissions {
    cache: Mutex<HashMap<u64, CachedRoles>>,
}

impl GuildPermissions {
    /// The server-wide permissions of `user` with `member_roles` in `guild`. `None` when the
    /// server's roles could not be read (logged; the failure is cached like an answer, so a
    /// broken read is not repeated for every message).
    pub async fn of(
        &self,
        rest: &Rest,
        guild: u64,
        user: u64,
        member_roles: &[u64],
    ) -> Option<Permissions> {
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(&guild).cloned())
            .filter(|(at, _)| at.elapsed() < GUILD_CACHE_TTL);
        let roles = match cached {
            Some((_, roles)) => roles,
            None => {
                let roles = read_guild(rest, guild).await.map(Arc::new);
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(guild, (Instant::now(), roles.clone()));
                }
                roles
            }
        };
        roles.map(|r| r.permissions(user, member_roles))
    }
}

async fn read_guild(rest: &Rest, guild: u64) -> Option<GuildRoles> {
    let route = Route::Guild {
        guild_id: GuildId::new(guild),
    };
    match rest
        .send(
            "read the server's roles",
            route,
            LightMethod::Get,
            None,
            Body::Other,
        )
        .await
    {
        Ok(Some(json)) => {
            let roles = GuildRoles::from_json(guild, &json);
            if roles.is_none() {
                tracing::warn!(
                    guild,
                    "the server's answer lists no roles; nobody is staff by permission"
                );
            }
            roles
        }
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(guild, %error, "could not read the server's roles; nobody is staff by permission");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GUILD: u64 = 10;

    fn guild() -> GuildRoles {
        GuildRoles::from_json(
            GUILD,
            &json!({
                "id": "10",
                "owner_id": "77",
                "roles": [
                    {"id": "10", "permissions": (Permissions::VIEW_CHANNEL.bits()).to_string()},
                    {"id": "20", "permissions": (Permissions::MANAGE_MESSAGES.bits()).to_string()},
                    {"id": "30", "permissions": (Permissions::ADMINISTRATOR.bits()).to_string()},
                ],
            }),
        )
        .unwrap()
    }

    #[test]
    fn server_permissions_come_from_everyone_and_the_members_roles() {
        let g = guild();
        assert_eq!(g.permissions(5, &[]), Permissions::VIEW_CHANNEL);
        assert!(g.permissions(5, &[20]).manage_messages());
        assert!(!g.permissions(5, &[20]).administrator());
        assert_eq!(g.permissions(5, &[30]), Permissions::all());
        // A role of another server grants nothing here.
        assert_eq!(g.permissions(5, &[999]), Permissions::VIEW_CHANNEL);
    }

    #[test]
    fn the_owner_has_every_permission() {
        assert_eq!(guild().permissions(77, &[]), Permissions::all());
    }

    #[test]
    fn a_guild_without_roles_is_not_read() {
        assert!(GuildRoles::from_json(GUILD, &json!({"id": "10"})).is_none());
    }
}
