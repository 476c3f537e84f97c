//! Tokens and scopes (docs/api.md): who may upload which school's data and read what.
//!
//! The server's configuration file (`narvaro.toml` by default) holds the server settings and
//! the tokens. A token is shown once, when `narvaro token create` makes it; the file keeps only
//! its argon2 hash with its name, scopes and creation time. A token reads
//! `nvr_<id>_<secret>`: the public `id` finds its record, argon2 checks the secret (a
//! constant-time comparison), so a check costs one hash whatever the number of tokens.
//! The server re-reads the file when it changes, so `narvaro token revoke` takes effect at once.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::contract::Register;
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
    /// A principal reading their own school's reports unsuppressed (docs/disclosure.md).
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

    /// Whether the caller may upload anything at all; checked before a body is read.
    pub fn may_upload_any(&self) -> bool {
        self.scopes.iter().any(|s| {
            matches!(
                s,
                Scope::Admin | Scope::UploadSchool(_) | Scope::UploadMunicipality(_)
            )
        })
    }

    /// The one upload scope rule, for the API and the command line alike: every row an upload
    /// writes must be the caller's. A register row's stated municipality must be in scope, and
    /// so must every municipality the register (before the upload) places the school in on the
    /// days a row is about; a register upload replaces a school's whole history, so all of
    /// its validity rows count. Refused: [`Error::Forbidden`] naming the schools, nothing stored.
    pub fn authorise(&self, claims: &[crate::contract::Claim], register: &Register) -> Result<()> {
        let mut outside = std::collections::BTreeSet::new();
        for c in claims {
            let allowed = match &c.municipality {
                Some(m) => self.may_upload(&c.school, Some(m)),
                None => {
                    let during = register.municipalities_during(&c.school, c.first, c.last);
                    if during.is_empty() {
                        self.may_upload(&c.school, None)
                    } else {
                        during.iter().all(|m| self.may_upload(&c.school, Some(m)))
                    }
                }
            };
            if !allowed {
                outside.insert(c.school.as_str());
            }
        }
        if outside.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = outside.iter().take(10).copied().collect();
        Err(Error::Forbidden(format!(
            "token '{}' får inte skicka uppgifter för {} skolenhet{} ({}{}); inget sparades",
            self.name,
            outside.len(),
            if outside.len() == 1 { "" } else { "er" },
            shown.join(", "),
            if outside.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )))
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

/// Server settings in the configuration file (`[server]` in `narvaro.toml`). Every limit has
/// a safe default; `serve` reads them when it starts (the upload size also on every upload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The largest upload accepted, in megabytes (HTTP 413 above it).
    pub max_upload_mb: u64,
    /// Seconds a client has to send a request's headers, and the longest an idle keep-alive
    /// connection is kept open.
    pub header_timeout_secs: u64,
    /// Seconds an upload's body may take to arrive in full (HTTP 408 after).
    pub body_timeout_secs: u64,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Uploads received and checked at once; more are answered 503 with `Retry-After`.
    pub max_concurrent_uploads: usize,
    /// Seconds the lake must be quiet after an upload before the background publisher
    /// publishes it.
    pub publish_settle_secs: u64,
    /// The longest an upload waits to be published while others keep arriving, in seconds.
    pub publish_max_wait_secs: u64,
    /// The niceness the background publisher (a child process) runs at, so that pages keep
    /// the processor first while it runs; 0 runs it at the server's own priority.
    pub publisher_nice: u8,
    /// The lake commands use when `--lake` is not given: a directory or s3://BUCKET/PREFIX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake: Option<String>,
}

impl ServerConfig {
    /// The upload size limit in bytes.
    pub fn max_upload_bytes(&self) -> usize {
        (self.max_upload_mb as usize).saturating_mul(1024 * 1024)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_upload_mb: 20,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            max_connections: 512,
            max_concurrent_uploads: 8,
            publish_settle_secs: 10,
            publish_max_wait_secs: 300,
            publisher_nice: 10,
            lake: None,
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
    /// An unknown id or a malformed token is checked against a decoy hash, so every wrong
    /// token costs the same work.
    fn verify(&self, token: &str) -> Option<Principal> {
        let (id, secret) = token
            .strip_prefix("nvr_")
            .and_then(|t| t.split_once('_'))
            .unwrap_or(("", token));
        let record = self.active().find(|t| t.id == id);
        let stored = record.map_or(decoy(), |r| r.hash.as_str());
        let hash = PasswordHash::new(stored).ok()?;
        let ok = Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok();
        let record = record.filter(|_| ok)?;
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
    /// Failed attempts per client address in the current window.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

struct State {
    modified: Option<SystemTime>,
    config: Config,
    /// SHA-256 of tokens that passed argon2, so a busy uploader pays the hash once.
    verified: HashMap<[u8; 32], Principal>,
}

/// Failed token checks one client address may make per [`FAILURE_WINDOW`]; then 429.
pub const FAILURES_ALLOWED: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// argon2 checks running at once in this process (each takes a core for ~15 ms); the rest
/// wait, off the async workers.
static HASHING: Semaphore = Semaphore::const_new(2);

/// A hash to check unknown token ids against, so an unknown id costs the same argon2 work as
/// a known id with a wrong secret and the two cannot be told apart by timing.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"narvaro-decoy-salt").expect("salt");
        Argon2::default()
            .hash_password(b"no token has this secret", &salt)
            .expect("argon2")
            .to_string()
    })
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
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// The caller behind an `Authorization` header value, from `client` (when known). The
    /// argon2 check runs on a blocking thread; a client that failed too often in the last
    /// minute is refused (429) without one.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Principal> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::Unauthorized(
                    "ingen behörighet: skicka ditt token som 'Authorization: Bearer TOKEN'".into(),
                )
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let config = {
            let mut state = self.state.lock().expect("tokens");
            self.reload_if_changed(&mut state)?;
            if let Some(p) = state.verified.get(&digest) {
                return Ok(p.clone());
            }
            state.config.clone()
        };
        if let Some(ip) = client {
            self.check_failures(ip)?;
        }
        let _turn = HASHING
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("behörighetskontrollen är avstängd".into()))?;
        let presented = token.to_string();
        let checked = tokio::task::spawn_blocking(move || {
            let principal = config.verify(&presented);
            (principal, config)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("behörighetskontrollen avbröts: {e}")))?;
        let (principal, config) = checked;
        let Some(principal) = principal else {
            if let Some(ip) = client {
                self.fail(ip);
            }
            return Err(Error::Unauthorized(
                "okänt eller återkallat token: be administratören om ett nytt".into(),
            ));
        };
        let mut state = self.state.lock().expect("tokens");
        if state.config == config {
            state.verified.insert(digest, principal.clone());
        }
        Ok(principal)
    }

    fn check_failures(&self, ip: IpAddr) -> Result<()> {
        let failures = self.failures.lock().expect("failures");
        if let Some((n, since)) = failures.get(&ip)
            && *n >= FAILURES_ALLOWED
        {
            let left = FAILURE_WINDOW.saturating_sub(since.elapsed());
            if !left.is_zero() {
                return Err(Error::Busy {
                    message: format!(
                        "för många misslyckade försök med token från den här adressen; försök igen om {} sekunder",
                        left.as_secs().max(1)
                    ),
                    retry_after_secs: left.as_secs().max(1),
                    client: true,
                });
            }
        }
        Ok(())
    }

    fn fail(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().expect("failures");
        // Old windows are forgotten, so the map stays as small as the current attackers.
        if failures.len() > 10_000 {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// The server settings as they stand.
    pub fn server(&self) -> ServerConfig {
        let mut state = self.state.lock().expect("tokens");
        // A broken edit keeps the last good configuration (and is logged).
        let _ = self.reload_if_changed(&mut state);
        state.config.server.clone()
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
