//! Who may do what: roles, password hashing (argon2id), bearer secrets (API tokens and login
//! sessions, stored as SHA-256 hashes), and the failed-login limiter. No SQL and no HTTP:
//! `store` keeps the hashes, `api` reads the headers.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a user or token may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read the dashboard, metrics, containers and the activity log; never secrets.
    Viewer,
    /// Also register, edit, remove and trust servers.
    Operator,
    /// Everything: users, tokens, raw host output.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "'{other}' is not a role: use admin, operator or viewer"
            )),
        }
    }
}

/// A secret handed out once (token, session id, password). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A new random bearer secret: a prefix that says what it is, then 256 random bits in hex.
pub fn new_secret(prefix: &str) -> Secret {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Secret(format!("{prefix}_{hex}"))
}

/// How a bearer secret is stored and looked up. Unsalted SHA-256 is right here: the secret
/// has 256 random bits, so there is nothing to brute-force, and lookup must be by equality.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A password unusable for login: hashing failed (never expected) or the policy refused it.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    // The field is named by whoever reports it (`password: must be ...`), once.
    #[error("must be 8 to 1024 characters")]
    Policy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes a password with argon2id and a random salt (PHC string format).
///
/// # Errors
/// The password is shorter than 8 or longer than 1024 characters.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let n = password.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(PasswordError::Policy);
    }
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the stored PHC string.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A user name: the same rule as server names, so names are safe in logs and URLs.
pub fn validate_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a name: use 1-64 letters, digits, '-', '_', '.', '@'",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// Parses `90d`, `12h`, `30m`, `3600s` (or a bare number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 90d, 12h, 30m"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("'{s}' is not a duration such as 90d, 12h, 30m")),
    };
    if secs == 0 {
        return Err("a duration must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

/// The longest user name a login may name. Real names are at most 64 bytes
/// ([`validate_user_name`]); anything longer is refused before it reaches the limiter, whose
/// keys it would otherwise inflate (#17: 725 MB of RSS from long names).
pub const MAX_LOGIN_NAME_BYTES: usize = 256;

/// How many user names and addresses the limiter remembers at once. At the limit, the key
/// whose latest attempt is oldest is forgotten: a flood of made-up names can then reset the
/// count of a real one, but only by spending its own per-address budget on them.
const MAX_TRACKED: usize = 10_000;

/// Counts login attempts per user name and per source address over a sliding window. While
/// either is over its limit, every login for it is refused, even with the right password,
/// so guessing cannot continue by getting one right.
///
/// An attempt is counted *before* its password is checked ([`LoginLimiter::admit`]) and
/// uncounted when it succeeds, so concurrent guesses cannot all pass the check before any is
/// recorded (#17). Refusals are reported so that one block writes one log entry, plus one
/// with the count of the refusals after it ([`LoginLimiter::ended_blocks`]).
#[derive(Debug)]
pub struct LoginLimiter {
    per_user: u32,
    per_source: u32,
    window: Duration,
    max_tracked: usize,
    state: Mutex<LimiterState>,
}

#[derive(Debug, Default)]
struct LimiterState {
    /// Counted attempts per key (`user:NAME`, `source:ADDR`), oldest first: failed ones and
    /// ones whose password is being checked.
    attempts: HashMap<String, VecDeque<Instant>>,
    /// Keys refused right now, by the key that refused.
    blocks: HashMap<String, Block>,
    /// Blocks that are over and refused more than their first, logged, attempt.
    ended: Vec<EndedBlock>,
    last_prune: Option<Instant>,
}

#[derive(Debug)]
struct Block {
    ends: Instant,
    /// Refusals after the first one, which alone was logged.
    unlogged: u64,
    user: String,
    source: String,
}

/// A block that is over, with the refusals it did not log one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedBlock {
    /// `true` when the user name was over its limit, `false` when the address was.
    pub by_user: bool,
    /// The user name and address of the block's first refused attempt.
    pub user: String,
    pub source: String,
    pub unlogged: u64,
}

/// What [`LoginLimiter::admit`] decided.
#[derive(Debug)]
pub enum Admission {
    /// Check the password; the attempt already counts as failed until
    /// [`LoginLimiter::succeeded`] takes it back.
    Check(Attempt),
    /// Refuse without checking. `log` is true for the first refusal of a block only; later
    /// ones are counted and reported by [`LoginLimiter::ended_blocks`].
    Refuse { wait: Duration, log: bool },
}

/// Notes a refusal by `key`'s block: true when it starts a block (the refusal to log).
fn note_refusal(
    st: &mut LimiterState,
    key: &str,
    user: &str,
    source: &str,
    ends: Instant,
    now: Instant,
) -> bool {
    match st.blocks.get_mut(key) {
        Some(b) if b.ends > now => {
            b.unlogged += 1;
            false
        }
        _ => {
            let old = st.blocks.insert(
                key.to_string(),
                Block {
                    ends,
                    unlogged: 0,
                    user: user.to_string(),
                    source: source.to_string(),
                },
            );
            if let Some(old) = old {
                push_ended(&mut st.ended, key, old);
            }
            true
        }
    }
}

/// A counted attempt, to hand back when it succeeds.
#[derive(Debug)]
pub struct Attempt {
    keys: [String; 2],
    at: Instant,
}

/// What a login attempt counts against: its user name and its client address (also the
/// keys of the failures API nodes share in the database).
pub fn login_keys(user: &str, source: &str) -> [String; 2] {
    [format!("user:{user}"), format!("source:{source}")]
}

impl LoginLimiter {
    pub fn new(per_user: u32, per_source: u32, window: Duration) -> Self {
        Self {
            per_user,
            per_source,
            window,
            max_tracked: MAX_TRACKED,
            state: Mutex::new(LimiterState::default()),
        }
    }

    /// The two keys an attempt counts against, each with its limit.
    fn keys(&self, user: &str, source: &str) -> [(String, u32); 2] {
        let [u, s] = login_keys(user, source);
        [(u, self.per_user), (s, self.per_source)]
    }

    /// Counts an attempt for this user and source, or refuses it, in one step.
    pub fn admit(&self, user: &str, source: &str) -> Admission {
        self.admit_at(user, source, Instant::now())
    }

    fn admit_at(&self, user: &str, source: &str, now: Instant) -> Admission {
        let Ok(mut st) = self.state.lock() else {
            // A panic while holding the lock: refusing everyone is the safe side.
            return Admission::Refuse {
                wait: self.window,
                log: false,
            };
        };
        self.prune(&mut st, now, false);
        if let Some((key, wait)) = self.over_limit(&mut st, user, source, now) {
            let log = note_refusal(&mut st, &key, user, source, now + wait, now);
            return Admission::Refuse { wait, log };
        }
        let keys = self.keys(user, source).map(|(k, _)| k);
        for key in &keys {
            if !st.attempts.contains_key(key) && st.attempts.len() >= self.max_tracked {
                self.prune(&mut st, now, true);
                evict_stalest(&mut st.attempts, self.max_tracked);
            }
            st.attempts.entry(key.clone()).or_default().push_back(now);
        }
        Admission::Check(Attempt { keys, at: now })
    }

    /// The key over its limit with the longest wait, dropping expired attempts of both keys.
    fn over_limit(
        &self,
        st: &mut LimiterState,
        user: &str,
        source: &str,
        now: Instant,
    ) -> Option<(String, Duration)> {
        let mut worst: Option<(String, Duration)> = None;
        for (key, limit) in self.keys(user, source) {
            let Some(q) = st.attempts.get_mut(&key) else {
                continue;
            };
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                q.pop_front();
            }
            if q.len() >= limit as usize {
                let oldest = q.front().copied().unwrap_or(now);
                let wait = self.window.saturating_sub(now.duration_since(oldest));
                if worst.as_ref().is_none_or(|(_, w)| wait > *w) {
                    worst = Some((key, wait));
                }
            }
        }
        worst
    }

    /// A refusal decided elsewhere: the fleet-wide count of the API nodes sharing a
    /// database reached `key`'s limit though this node's own did not. Logged like this
    /// node's own refusals: true for the first of a block, later ones counted and reported by
    /// [`Self::ended_blocks`].
    pub fn refused_elsewhere(&self, key: &str, user: &str, source: &str, wait: Duration) -> bool {
        let now = Instant::now();
        let Ok(mut st) = self.state.lock() else {
            return false;
        };
        note_refusal(&mut st, key, user, source, now + wait, now)
    }

    /// The attempt succeeded: it no longer counts against its user name or address.
    pub fn succeeded(&self, attempt: Attempt) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        for key in &attempt.keys {
            if let Some(q) = st.attempts.get_mut(key) {
                if let Some(i) = q.iter().rposition(|t| *t == attempt.at) {
                    q.remove(i);
                }
                if q.is_empty() {
                    st.attempts.remove(key);
                }
            }
        }
    }

    /// Blocks that have ended with refusals not yet logged, each reported once.
    pub fn ended_blocks(&self) -> Vec<EndedBlock> {
        self.ended_blocks_at(Instant::now())
    }

    fn ended_blocks_at(&self, now: Instant) -> Vec<EndedBlock> {
        let Ok(mut st) = self.state.lock() else {
            return Vec::new();
        };
        self.close_ended_blocks(&mut st, now);
        std::mem::take(&mut st.ended)
    }

    fn close_ended_blocks(&self, st: &mut LimiterState, now: Instant) {
        let over: Vec<String> = st
            .blocks
            .iter()
            .filter(|(_, b)| b.ends <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in over {
            if let Some(b) = st.blocks.remove(&key) {
                push_ended(&mut st.ended, &key, b);
            }
        }
    }

    /// Forgets expired attempts and keys without any, and closes ended blocks: at most once a
    /// minute (or window), unless `force`d because the table is full.
    fn prune(&self, st: &mut LimiterState, now: Instant, force: bool) {
        let every = self.window.min(Duration::from_secs(60));
        if !force && st.last_prune.is_some_and(|t| now.duration_since(t) < every) {
            return;
        }
        st.last_prune = Some(now);
        let window = self.window;
        st.attempts.retain(|_, q| {
            while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
                q.pop_front();
            }
            !q.is_empty()
        });
        self.close_ended_blocks(st, now);
    }

    /// `Some(wait)` when a login for this user or from this source must be refused now.
    /// Looks only; [`LoginLimiter::admit`] is what the login handler uses.
    pub fn blocked(&self, user: &str, source: &str) -> Option<Duration> {
        let mut st = self.state.lock().ok()?;
        self.over_limit(&mut st, user, source, Instant::now())
            .map(|(_, wait)| wait)
    }

    /// Counts a failed attempt that was not [`LoginLimiter::admit`]ted.
    pub fn failed(&self, user: &str, source: &str) {
        if let Ok(mut st) = self.state.lock() {
            let now = Instant::now();
            for (key, _) in self.keys(user, source) {
                st.attempts.entry(key).or_default().push_back(now);
            }
        }
    }

    /// How many keys are remembered (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.state.lock().map_or(0, |st| st.attempts.len())
    }
}

fn push_ended(ended: &mut Vec<EndedBlock>, key: &str, b: Block) {
    if b.unlogged > 0 {
        ended.push(EndedBlock {
            by_user: key.starts_with("user:"),
            user: b.user,
            source: b.source,
            unlogged: b.unlogged,
        });
    }
}

/// Drops the keys whose latest attempt is oldest until there is room for one more.
fn evict_stalest(attempts: &mut HashMap<String, VecDeque<Instant>>, max: usize) {
    while attempts.len() >= max {
        let Some(stalest) = attempts
            .iter()
            .min_by_key(|(_, q)| q.back().copied())
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        attempts.remove(&stalest);
    }
}

/// At most `per_window` calls per key (a caller) per window: for requests that cost the
/// server work and answer questions (the validate endpoints), so they cannot be used in a loop.
/// Bounded in size: expired windows are dropped when it grows, and it is emptied if it must.
#[derive(Debug)]
pub struct RateLimit {
    per_window: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys a [`RateLimit`] remembers at most.
const RATE_KEYS: usize = 10_000;

impl RateLimit {
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a call; `Err(wait)` when the key is over its limit for this window.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut counts) = self.counts.lock() else {
            return Ok(());
        };
        if counts.len() >= RATE_KEYS && !counts.contains_key(key) {
            let window = self.window;
            counts.retain(|_, (start, _)| now.duration_since(*start) < window);
            if counts.len() >= RATE_KEYS {
                counts.clear();
            }
        }
        let slot = counts.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(slot.0) >= self.window {
            *slot = (now, 0);
        }
        if slot.1 >= self.per_window {
            return Err(self.window.saturating_sub(now.duration_since(slot.0)));
        }
        slot.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse").expect("hash");
        let b = hash_password("correct horse").expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsf", &a));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn secrets_are_random_and_hidden_from_debug() {
        let a = new_secret("fpt");
        let b = new_secret("fpt");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("fpt_") && a.expose().len() == 4 + 64);
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(secret_hash("x").len(), 64);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0d").is_err());
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_names_a_wait() {
        let l = LoginLimiter::new(3, 5, Duration::from_secs(900));
        for _ in 0..3 {
            assert!(l.blocked("alice", "10.0.0.1").is_none());
            l.failed("alice", "10.0.0.1");
        }
        let wait = l
            .blocked("alice", "10.0.0.9")
            .expect("user blocked from anywhere");
        assert!(wait > Duration::from_secs(800));
        assert!(l.blocked("bob", "10.0.0.2").is_none());
        l.failed("bob", "10.0.0.1");
        l.failed("carol", "10.0.0.1");
        assert!(
            l.blocked("dave", "10.0.0.1").is_some(),
            "source over its limit of 5"
        );
    }

    fn limiter(per_user: u32, per_source: u32, window_secs: u64) -> LoginLimiter {
        LoginLimiter::new(per_user, per_source, Duration::from_secs(window_secs))
    }

    fn refused(a: &Admission) -> Option<bool> {
        match a {
            Admission::Refuse { log, .. } => Some(*log),
            Admission::Check(_) => None,
        }
    }

    #[test]
    fn attempts_count_before_the_check_so_a_burst_gets_only_the_limit() {
        // 150 attempts arrive before any password check has finished (#17 saw 32 checks).
        let l = limiter(10, 20, 900);
        let t = Instant::now();
        let checked = (0..150)
            .map(|i| l.admit_at("alice", &format!("10.0.0.{}", i % 10), t))
            .filter(|a| matches!(a, Admission::Check(_)))
            .count();
        assert_eq!(checked, 10);
    }

    #[test]
    fn a_successful_attempt_is_taken_back() {
        let l = limiter(3, 5, 900);
        let t = Instant::now();
        for _ in 0..50 {
            match l.admit_at("alice", "10.0.0.1", t) {
                Admission::Check(a) => l.succeeded(a),
                other => panic!("refused after successes only: {other:?}"),
            }
        }
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn a_block_logs_its_first_refusal_and_reports_the_rest_once_it_ends() {
        let l = limiter(2, 100, 60);
        let t = Instant::now();
        for _ in 0..2 {
            assert!(refused(&l.admit_at("alice", "10.0.0.1", t)).is_none());
        }
        let logged: Vec<bool> = (0..100)
            .filter_map(|i| refused(&l.admit_at("alice", "10.0.0.1", t + Duration::from_millis(i))))
            .collect();
        assert_eq!(logged.len(), 100, "all refused");
        assert_eq!(logged.iter().filter(|l| **l).count(), 1, "one logged");
        assert!(
            l.ended_blocks_at(t + Duration::from_secs(30)).is_empty(),
            "still blocked"
        );
        let ended = l.ended_blocks_at(t + Duration::from_secs(61));
        assert_eq!(
            ended,
            vec![EndedBlock {
                by_user: true,
                user: "alice".into(),
                source: "10.0.0.1".into(),
                unlogged: 99,
            }]
        );
        assert!(
            l.ended_blocks_at(t + Duration::from_secs(62)).is_empty(),
            "reported once"
        );
    }

    #[test]
    fn a_block_decided_by_the_shared_count_is_logged_once_like_a_local_one() {
        let l = limiter(5, 100, 60);
        let wait = Duration::from_secs(60);
        let key = &login_keys("alice", "10.0.0.9")[0];
        assert!(
            l.refused_elsewhere(key, "alice", "10.0.0.9", wait),
            "first: logged"
        );
        assert!(!l.refused_elsewhere(key, "alice", "10.0.0.9", wait));
        assert!(!l.refused_elsewhere(key, "alice", "10.0.0.9", wait));
        let ended = l.ended_blocks_at(Instant::now() + Duration::from_secs(61));
        assert_eq!(
            ended,
            vec![EndedBlock {
                by_user: true,
                user: "alice".into(),
                source: "10.0.0.9".into(),
                unlogged: 2,
            }]
        );
    }

    #[test]
    fn a_new_block_logs_again_and_hands_over_the_count_of_the_last() {
        let l = limiter(1, 100, 60);
        let t = Instant::now();
        assert!(refused(&l.admit_at("bob", "10.0.0.2", t)).is_none());
        assert_eq!(refused(&l.admit_at("bob", "10.0.0.2", t)), Some(true));
        assert_eq!(refused(&l.admit_at("bob", "10.0.0.2", t)), Some(false));
        // The window passes: one more guess, and the block that follows logs again.
        let later = t + Duration::from_secs(61);
        assert!(refused(&l.admit_at("bob", "10.0.0.2", later)).is_none());
        assert_eq!(refused(&l.admit_at("bob", "10.0.0.2", later)), Some(true));
        let ended = l.ended_blocks_at(later);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].unlogged, 1);
    }

    #[test]
    fn expired_attempts_are_forgotten_and_the_table_is_bounded() {
        let mut l = limiter(10, u32::MAX, 60);
        let t = Instant::now();
        for i in 0..500 {
            assert!(refused(&l.admit_at(&format!("user{i}"), "10.0.0.3", t)).is_none());
        }
        assert_eq!(l.tracked(), 501, "500 names and one address");
        let later = t + Duration::from_secs(61);
        assert!(refused(&l.admit_at("late", "10.0.0.4", later)).is_none());
        assert_eq!(l.tracked(), 2, "only the new attempt's keys remain");

        l.max_tracked = 100;
        for i in 0..5000 {
            let _ = l.admit_at(&format!("flood{i}"), "10.0.0.5", later);
            assert!(l.tracked() <= 100, "{} keys after {i}", l.tracked());
        }
    }

    #[test]
    fn a_rate_limit_counts_per_key_and_window() {
        let r = RateLimit::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.check_at("a", t0).is_ok());
        }
        let wait = r
            .check_at("a", t0 + Duration::from_secs(10))
            .expect_err("over");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            r.check_at("b", t0).is_ok(),
            "another caller has its own count"
        );
        assert!(
            r.check_at("a", t0 + Duration::from_secs(61)).is_ok(),
            "a new window"
        );
    }
}
