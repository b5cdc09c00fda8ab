//! Private keys at rest: sealed with ChaCha20-Poly1305 under a 256-bit master key that lives
//! outside the database, in `FLEETPOLL_MASTER_KEY` (64 hex digits) or in a file beside the
//! database (`master.key`, created with mode 0600 on first use). A copied database alone
//! reveals no key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngExt as _;

/// The environment variable that may hold the master key.
pub const MASTER_KEY_ENV: &str = "FLEETPOLL_MASTER_KEY";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{MASTER_KEY_ENV} must be 64 hex digits (32 bytes)")]
    BadEnv,
    #[error("master key file '{path}': {message}")]
    File { path: PathBuf, message: String },
    #[error("a stored key could not be decrypted: wrong master key, or the database was altered")]
    Decrypt,
    /// A new key would seal new secrets while the old ones stay unreadable: better to stop.
    #[error(
        "the database holds keys sealed under a master key that is not here: neither {MASTER_KEY_ENV} \
         nor '{}' is set; restore that file (or the variable) from where the database was set up",
        path.display()
    )]
    Missing { path: PathBuf },
}

/// The master key. `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

fn file(dir: &Path) -> PathBuf {
    dir.join("master.key")
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl MasterKey {
    /// From `FLEETPOLL_MASTER_KEY` when set, else from `dir/master.key`; `None` when neither.
    ///
    /// # Errors
    /// A malformed variable or file, or a file that cannot be read.
    pub fn load(dir: &Path) -> Result<Option<Self>, VaultError> {
        if let Ok(v) = std::env::var(MASTER_KEY_ENV) {
            return from_hex(&v)
                .map(|k| Some(Self(k)))
                .ok_or(VaultError::BadEnv);
        }
        let path = file(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => from_hex(&text)
                .map(|k| Some(Self(k)))
                .ok_or_else(|| VaultError::File {
                    path,
                    message: "not 64 hex digits".into(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(VaultError::File {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// The key that opens what is sealed: it must exist.
    ///
    /// # Errors
    /// As [`Self::load`], and [`VaultError::Missing`] when there is none.
    pub fn existing(dir: &Path) -> Result<Self, VaultError> {
        Self::load(dir)?.ok_or_else(|| VaultError::Missing { path: file(dir) })
    }

    /// The key to seal with, created on first use. `sealed_exist` says whether the database
    /// already holds something sealed: then a missing key is lost, not new, and is refused.
    ///
    /// # Errors
    /// As [`Self::load`], [`VaultError::Missing`], or a file that cannot be created.
    pub fn for_sealing(dir: &Path, sealed_exist: bool) -> Result<Self, VaultError> {
        if let Some(k) = Self::load(dir)? {
            return Ok(k);
        }
        let path = file(dir);
        if sealed_exist {
            return Err(VaultError::Missing { path });
        }
        let err = |message: String| VaultError::File {
            path: path.clone(),
            message,
        };
        let key: [u8; 32] = rand::rng().random();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(|e| err(e.to_string()))?;
        f.write_all(format!("{hex}\n").as_bytes())
            .map_err(|e| err(e.to_string()))?;
        tracing::warn!(path = %path.display(), "Created the master key for stored SSH keys; back it up apart from the database");
        Ok(Self(key))
    }

    /// nonce || ciphertext
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let nonce: [u8; 12] = rand::rng().random();
        let mut out = nonce.to_vec();
        // Encryption of an in-memory buffer cannot fail for these sizes.
        out.extend(
            cipher
                .encrypt(Nonce::from_slice(&nonce), plain)
                .unwrap_or_default(),
        );
        out
    }

    /// # Errors
    /// Wrong key or altered data.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < 12 + 16 {
            return Err(VaultError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(12);
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| VaultError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_tampering_or_another_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = MasterKey::for_sealing(dir.path(), false).expect("key");
        let again = MasterKey::existing(dir.path()).expect("same key from the file");
        let sealed = k.seal(b"-----BEGIN OPENSSH PRIVATE KEY-----");
        assert!(!sealed.windows(5).any(|w| w == b"BEGIN"));
        assert_eq!(
            again.open(&sealed).expect("open"),
            b"-----BEGIN OPENSSH PRIVATE KEY-----"
        );
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(k.open(&bad).is_err());
        let other = MasterKey([7; 32]);
        assert!(other.open(&sealed).is_err());
        assert!(
            !format!("{k:?}").contains(&format!("{:02x}", k.0[0]))
                || format!("{k:?}") == "MasterKey([redacted])"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_key_is_created_only_while_nothing_is_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = MasterKey::existing(dir.path()).expect_err("nothing to open with");
        assert!(matches!(e, VaultError::Missing { .. }), "{e}");
        let e = MasterKey::for_sealing(dir.path(), true).expect_err("sealed keys exist");
        assert!(e.to_string().contains("master.key"), "names the file: {e}");
        assert!(
            !dir.path().join("master.key").exists(),
            "no new key beside sealed ones"
        );
        MasterKey::for_sealing(dir.path(), false).expect("first use creates it");
        assert!(dir.path().join("master.key").exists());
        MasterKey::for_sealing(dir.path(), true).expect("and it is found afterwards");
    }
}
