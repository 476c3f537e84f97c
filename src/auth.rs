//! Tokens and scopes (DESIGN.md §8): who may upload which school's data and read what.
//!
//! The server's configuration file (`narvaro.toml` by default) holds the server settings and
//! the tokens. A token is shown once, when `narvaro token create` makes it; the file keeps only
//! its argon2 hash with its name, scopes and creation time. A token reads
//! `nvr_<id>_<secret>`: the public `id` finds its record, argon2 checks the secret (a
//! constant-time comparison), so a check costs one hash whatever the number of tokens.
//! The server re-reads the file when it changes, so `narvaro token revoke` takes effect at once.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The configuration file used when none is named.
pub const DEFAULT_CONFIG: &str = "narvaro.toml";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Upload (and see the uploads of) one school unit.
    UploadSchool(String),
    /// A municipality's school system: upload all its school units.
    UploadMunicipality(String),
    /// See a municipality's uploads and unpublished detail.
    ReadMunicipality(String),
    /// See a county's uploads and unpublished detail.
    ReadCounty(String),
    /// A principal reading their own school's reports unsuppressed (DESIGN.md §7).
    ReadSchool(String),
    /// Everything.
    Admin,
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Scope, String> {
        let digits =
            |code: &str, n: usize| code.len() == n && code.bytes().all(|b| b.is_ascii_digit());
        let known_municipality = |code: &str| crate::reference::municipality(code).is_some();
        let known_county = |code: &str| {
            crate::reference::municipalities()
                .iter()
                .any(|m| m.county_code == code)
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["admin"] => Ok(Scope::Admin),
            ["upload", "school", c] if digits(c, 8) => Ok(Scope::UploadSchool(c.to_string())),
            ["upload", "municipality", c] if known_municipality(c) => {
                Ok(Scope::UploadMunicipality(c.to_string()))
            }
            ["read", "municipality", c] if known_municipality(c) => {
                Ok(Scope::ReadMunicipality(c.to_string()))
            }
            ["read", "school", c] if digits(c, 8) => Ok(Scope::ReadSchool(c.to_string())),
            ["read", "county", c] if digits(c, 2) && known_county(c) => {
                Ok(Scope::ReadCounty(c.to_string()))
            }
            _ => Err(format!(
                "okänd behörighet '{s}': välj upload:school:SKOLENHETSKOD (8 siffror), \
                 upload:municipality:KOMMUNKOD, read:school:SKOLENHETSKOD, read:municipality:KOMMUNKOD, \
                 read:county:LÄNSKOD eller admin"
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::UploadSchool(c) => write!(f, "upload:school:{c}"),
            Scope::UploadMunicipality(c) => write!(f, "upload:municipality:{c}"),
            Scope::ReadMunicipality(c) => write!(f, "read:municipality:{c}"),
            Scope::ReadCounty(c) => write!(f, "read:county:{c}"),
            Scope::ReadSchool(c) => write!(f, "read:school:{c}"),
            Scope::Admin => write!(f, "admin"),
        }
    }
}

/// An authenticated caller: the token's name and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the caller may upload rows for `school` (in `municipality`, when registered).
    pub fn may_upload(&self, school: &str, municipality: Option<&str>) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Admin => true,
            Scope::UploadSchool(c) => c == school,
            Scope::UploadMunicipality(m) => municipality == Some(m.as_str()),
            _ => false,
        })
    }

    /// Whether the caller is `school`'s own (a read or upload scope for that school), and
    /// so sees its figures without disclosure control.
    pub fn owns_school(&self, school: &str) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::ReadSchool(c) | Scope::UploadSchool(c) => c == school,
            _ => false,
        })
    }

    /// Whether the caller may see unpublished detail (e.g. uploads) of `school`.
    pub fn may_read(&self, school: &str, municipality: Option<&str>) -> bool {
        let county = municipality
            .and_then(crate::reference::municipality)
            .map(|m| m.county_code.as_str());
        self.may_upload(school, municipality)
            || self.scopes.iter().any(|s| match s {
                Scope::ReadMunicipality(m) => municipality == Some(m.as_str()),
                Scope::ReadCounty(c) => county == Some(c.as_str()),
                Scope::ReadSchool(c) => c == school,
                _ => false,
            })
    }
}

/// Server settings in the configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The largest upload accepted, in megabytes (HTTP 413 above it).
    #[serde(default = "default_max_upload_mb")]
    pub max_upload_mb: u64,
}

fn default_max_upload_mb() -> u64 {
    20
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_upload_mb: default_max_upload_mb(),
        }
    }
}

/// One token as stored: never the token itself, only its argon2 hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The configuration file: server settings and tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub tokens: Vec<TokenRecord>,
}

impl Config {
    /// Reads the file; a missing file is an empty configuration (no tokens).
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let config: Config =
            toml::from_str(&text).map_err(|e| Error::usage(format!("{}: {e}", path.display())))?;
        for t in &config.tokens {
            for s in &t.scopes {
                s.parse::<Scope>().map_err(|e| {
                    Error::usage(format!("{}: token '{}': {e}", path.display(), t.name))
                })?;
            }
        }
        Ok(config)
    }

    /// Writes the file whole (temporary file, then rename): a crash leaves the old one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = format!(
            "# Närvarolagret server configuration. Written by `narvaro token`; tokens are stored\n\
             # only as argon2 hashes.\n\n{}",
            toml::to_string_pretty(self).map_err(|e| Error::usage(e.to_string()))?
        );
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(d) = dir {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Adds a token and returns it: the only time it is ever shown.
    pub fn create_token(
        &mut self,
        name: &str,
        scopes: &[Scope],
        now: DateTime<Utc>,
    ) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(Error::usage("ett token behöver ett namn (utan styrtecken)"));
        }
        if scopes.is_empty() {
            return Err(Error::usage(
                "ett token behöver minst en behörighet (--scope)",
            ));
        }
        if self.active().any(|t| t.name == name) {
            return Err(Error::usage(format!(
                "det finns redan ett aktivt token med namnet '{name}'"
            )));
        }
        let mut rng = rand::rng();
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        rng.fill_bytes(&mut salt);
        let (id, secret) = (hex::encode(id), hex::encode(secret));
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::usage(e.to_string()))?;
        let hash = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| Error::usage(e.to_string()))?
            .to_string();
        self.tokens.push(TokenRecord {
            id: id.clone(),
            name: name.to_string(),
            scopes: scopes.iter().map(Scope::to_string).collect(),
            hash,
            created_at: now,
            revoked_at: None,
        });
        Ok(format!("nvr_{id}_{secret}"))
    }

    /// Revokes the active token with this name or id.
    pub fn revoke(&mut self, name_or_id: &str, now: DateTime<Utc>) -> Result<&TokenRecord> {
        let t = self
            .tokens
            .iter_mut()
            .find(|t| t.revoked_at.is_none() && (t.name == name_or_id || t.id == name_or_id))
            .ok_or_else(|| {
                Error::usage(format!(
                    "inget aktivt token heter eller har id '{name_or_id}'"
                ))
            })?;
        t.revoked_at = Some(now);
        Ok(t)
    }

    /// Tokens not revoked.
    pub fn active(&self) -> impl Iterator<Item = &TokenRecord> {
        self.tokens.iter().filter(|t| t.revoked_at.is_none())
    }

    /// Checks a presented token against the stored hashes.
    fn verify(&self, token: &str) -> Option<Principal> {
        let (id, secret) = token.strip_prefix("nvr_")?.split_once('_')?;
        let record = self.active().find(|t| t.id == id)?;
        let hash = PasswordHash::new(&record.hash).ok()?;
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .ok()?;
        Some(Principal {
            name: record.name.clone(),
            scopes: record
                .scopes
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
        })
    }
}

/// The server's view of the configuration file, re-read when it changes.
pub struct Tokens {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

struct State {
    modified: Option<SystemTime>,
    config: Config,
    /// SHA-256 of tokens that passed argon2, so a busy uploader pays the hash once.
    verified: HashMap<[u8; 32], Principal>,
}

impl Tokens {
    /// Reads the configuration at `path` (none: no tokens, default settings).
    pub fn open(path: Option<&Path>) -> Result<Tokens> {
        let config = match path {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        Ok(Tokens {
            path: path.map(Path::to_path_buf),
            state: Mutex::new(State {
                modified: path.and_then(modified),
                config,
                verified: HashMap::new(),
            }),
        })
    }

    /// The caller behind an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthorized(
                    "ingen behörighet: skicka ditt token som 'Authorization: Bearer TOKEN'".into(),
                )
            })?;
        let unknown = || {
            Error::Unauthorized(
                "okänt eller återkallat token: be administratören om ett nytt".into(),
            )
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let config = {
            let mut state = self.state.lock().expect("tokens");
            self.reload_if_changed(&mut state)?;
            if let Some(p) = state.verified.get(&digest) {
                return Ok(p.clone());
            }
            state.config.clone()
        };
        // argon2 outside the lock: one slow check does not hold up the others.
        let principal = config.verify(token).ok_or_else(unknown)?;
        let mut state = self.state.lock().expect("tokens");
        if state.config == config {
            state.verified.insert(digest, principal.clone());
        }
        Ok(principal)
    }

    /// The upload size limit in bytes.
    pub fn max_upload_bytes(&self) -> usize {
        let mut state = self.state.lock().expect("tokens");
        // A broken edit keeps the last good configuration (and is logged).
        let _ = self.reload_if_changed(&mut state);
        (state.config.server.max_upload_mb as usize).saturating_mul(1024 * 1024)
    }

    fn reload_if_changed(&self, state: &mut State) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let now = modified(path);
        if now == state.modified {
            return Ok(());
        }
        match Config::load(path) {
            Ok(config) => {
                tracing::info!(path = %path.display(), "configuration reloaded");
                state.config = config;
                state.modified = now;
                state.verified.clear();
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration not reloaded");
                Err(e)
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for s in [
            "admin",
            "upload:school:18800101",
            "upload:municipality:1880",
            "read:municipality:0114",
            "read:county:18",
        ] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in [
            "upload:school:1880",
            "upload:municipality:9999",
            "read:county:99",
            "write:all",
            "",
        ] {
            let e = bad.parse::<Scope>().unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    #[test]
    fn a_token_verifies_once_created_and_not_after_revocation() {
        let mut c = Config::default();
        let scopes = vec![Scope::UploadSchool("18800101".into())];
        let token = c.create_token("Ängsskolan", &scopes, now()).unwrap();
        assert!(token.starts_with("nvr_"));
        assert!(
            !toml::to_string(&c).unwrap().contains(&token[21..]),
            "secret stored"
        );
        let p = c.verify(&token).unwrap();
        assert_eq!(
            (p.name.as_str(), p.scopes.clone()),
            ("Ängsskolan", scopes.clone())
        );
        // One changed character of the secret, or another token's id, fails.
        let mut wrong = token.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(wrong.len() - 1.., last);
        assert!(c.verify(&wrong).is_none());
        assert!(c.verify("nvr_x_y").is_none());
        assert!(
            c.create_token("Ängsskolan", &scopes, now()).is_err(),
            "name taken"
        );
        c.revoke("Ängsskolan", now()).unwrap();
        assert!(c.verify(&token).is_none());
        assert!(c.revoke("Ängsskolan", now()).is_err(), "already revoked");
    }

    #[test]
    fn scopes_decide_upload_and_read() {
        let school = Principal {
            name: "s".into(),
            scopes: vec![Scope::UploadSchool("18800101".into())],
        };
        assert!(school.may_upload("18800101", Some("1880")));
        assert!(!school.may_upload("18800102", Some("1880")));
        let system = Principal {
            name: "m".into(),
            scopes: vec![Scope::UploadMunicipality("1880".into())],
        };
        assert!(system.may_upload("18800102", Some("1880")));
        assert!(!system.may_upload("18810101", Some("1881")));
        assert!(!system.may_upload("99999999", None), "unregistered school");
        let county = Principal {
            name: "c".into(),
            scopes: vec![Scope::ReadCounty("18".into())],
        };
        assert!(county.may_read("18810101", Some("1881")));
        assert!(!county.may_read("23800101", Some("2380")));
        assert!(!county.may_upload("18810101", Some("1881")));
    }
}
