//! Reading private keys, and the one place a server's key is resolved: from a file on the
//! poller, from key text an operator gives, or from its sealed copy in the database, with the
//! passphrase from the environment variable the server names. The key material stays in
//! memory inside russh's `PrivateKey`; errors name the file and what is wrong with it, never
//! its contents.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use russh::keys::PrivateKey;

/// A key passphrase. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file '{0}' does not exist")]
    NotFound(PathBuf),
    #[error("key file '{path}' cannot be read: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file '{0}' is encrypted: give the name of an environment variable holding its passphrase (--key-passphrase-env VAR)")]
    Encrypted(PathBuf),
    #[error("key file '{0}' could not be decrypted with the given passphrase")]
    WrongPassphrase(PathBuf),
    #[error("key file '{0}' holds a public key; give the private key (the file without .pub)")]
    PublicKey(PathBuf),
    #[error(
        "key file '{path}' is not a private key russh can load (ed25519, ECDSA, RSA): {reason}"
    )]
    Invalid { path: PathBuf, reason: String },
    #[error("key file '{0}' is not a regular file")]
    NotAFile(PathBuf),
    #[error("key file '{0}' is larger than 64 KiB: not a private key")]
    TooLarge(PathBuf),
    /// Reading or decrypting the key did not finish within [`KEY_DEADLINE`].
    #[error("reading the key took longer than {}s", KEY_DEADLINE.as_secs())]
    TimedOut,
    /// The server names a passphrase variable that is not set in the poller's environment.
    #[error("environment variable '{0}' holding the key passphrase is not set")]
    PassphraseUnset(String),
    /// The stored key could not be opened (master key missing, wrong or altered).
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

/// Where a server's private key is.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// A file on the poller (`key_path`).
    File(&'a Path),
    /// Key text given by an operator, about to be stored.
    Text(&'a str),
    /// The stored copy, sealed under the master key kept in `key_dir` (beside the database).
    Sealed { sealed: &'a [u8], key_dir: &'a Path },
}

/// The passphrase a server's key needs: none when no variable is named, and an error when
/// one is named but not set, so a forgotten variable says so instead of surfacing later as
/// "the key is encrypted".
///
/// # Errors
/// [`KeyError::PassphraseUnset`].
pub fn passphrase_from_env(var: Option<&str>) -> Result<Option<Passphrase>, KeyError> {
    var.map(|v| {
        std::env::var(v)
            .map(Passphrase::new)
            .map_err(|_| KeyError::PassphraseUnset(v.to_string()))
    })
    .transpose()
}

/// Resolves a server's private key from wherever it is, decrypted with the passphrase from
/// `passphrase_env` when one is named. The one resolver used for validation, storage and
/// polling, so that all three accept and refuse the same keys.
///
/// # Errors
/// [`KeyError`] naming the file (or "the key given") and what is wrong with it.
pub fn resolve(
    source: KeySource<'_>,
    passphrase_env: Option<&str>,
) -> Result<PrivateKey, KeyError> {
    let passphrase = passphrase_from_env(passphrase_env)?;
    match source {
        KeySource::File(path) => load_private_key(path, passphrase.as_ref()),
        KeySource::Text(text) => decode_private_key(text, passphrase.as_ref()),
        KeySource::Sealed { sealed, key_dir } => {
            let master = crate::vault::MasterKey::existing(key_dir)?;
            let text = crate::auth::Secret::new(
                String::from_utf8_lossy(&master.open(sealed)?).into_owned(),
            );
            decode_at(
                text.expose(),
                passphrase.as_ref(),
                Path::new("(the stored key)"),
            )
        }
    }
}

/// Loads a private key, decrypting it with `passphrase` when given.
///
/// # Errors
/// [`KeyError`] naming the file.
pub fn load_private_key(
    path: &Path,
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKey, KeyError> {
    let text = read_key_file(path)?;
    decode_at(&String::from_utf8_lossy(&text), passphrase, path)
}

/// A private key file is a few KiB (an RSA 4096 key in OpenSSH format about 3.4 KiB);
/// anything larger is not one, and is not read.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// How long resolving a key may take off the async workers before the caller gives up.
pub const KEY_DEADLINE: Duration = Duration::from_secs(5);

/// Reads a key file an operator named, refusing what could hold the thread or fill memory:
/// anything but a regular file (a FIFO, `/dev/zero`, a directory), and anything over
/// [`MAX_KEY_FILE_BYTES`]. The file is opened non-blocking, so neither opening a FIFO nor
/// reading a file that waits for data (`/proc/kmsg`, which stat calls regular) can block.
fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let unreadable = |source: std::io::Error| KeyError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => KeyError::NotFound(path.to_path_buf()),
            _ => unreadable(e),
        })?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile(path.to_path_buf()));
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge(path.to_path_buf()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The size stat gives can be wrong (procfs says 0): the cap holds whatever is read.
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge(path.to_path_buf()));
    }
    Ok(bytes)
}

/// Whether `path` (symbolic links followed) lies under one of `dirs`. A missing file is
/// judged by its directory, so that a typo inside an allowed directory still gets the
/// precise "does not exist".
pub fn under_dirs(path: &Path, dirs: &[PathBuf]) -> bool {
    let resolved = std::fs::canonicalize(path).ok().or_else(|| {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
        Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
    });
    let Some(resolved) = resolved else {
        return false;
    };
    dirs.iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| resolved.starts_with(d))
}

/// Runs key work (reading a file, decrypting) on the blocking pool with [`KEY_DEADLINE`], so
/// that a slow or hostile file never holds an async worker; `None` when the deadline passed
/// (the thread is left to finish on its own) or the work panicked.
pub async fn off_async<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    off_async_within(KEY_DEADLINE, work).await
}

async fn off_async_within<T: Send + 'static>(
    deadline: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::time::timeout(deadline, tokio::task::spawn_blocking(work))
        .await
        .ok()?
        .ok()
}

/// Decodes key text given directly (a key to be stored); errors name it "the key".
///
/// # Errors
/// [`KeyError`].
pub fn decode_private_key(
    text: &str,
    passphrase: Option<&Passphrase>,
) -> Result<PrivateKey, KeyError> {
    decode_at(text, passphrase, Path::new("(the key given)"))
}

fn decode_at(
    text: &str,
    passphrase: Option<&Passphrase>,
    path: &Path,
) -> Result<PrivateKey, KeyError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("ssh-") || trimmed.starts_with("ecdsa-") {
        return Err(KeyError::PublicKey(path.to_path_buf()));
    }
    match russh::keys::decode_secret_key(text, passphrase.map(Passphrase::expose)) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(if passphrase.is_some() {
            KeyError::WrongPassphrase(path.to_path_buf())
        } else {
            KeyError::Encrypted(path.to_path_buf())
        }),
        Err(e) => {
            // With a wrong passphrase the decoder reports a decryption or corrupt-key error;
            // a second look without one tells whether the file is simply encrypted.
            let encrypted = passphrase.is_some()
                && matches!(
                    russh::keys::decode_secret_key(text, None),
                    Err(russh::keys::Error::KeyIsEncrypted)
                );
            if encrypted {
                Err(KeyError::WrongPassphrase(path.to_path_buf()))
            } else {
                Err(KeyError::Invalid {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Writes a new ed25519 key pair: the private key in OpenSSH format at `path` (created with
/// mode 0600, never overwriting a file) and the public line at `path.pub`.
///
/// # Errors
/// The file exists or cannot be written.
pub fn generate(path: &Path, comment: &str) -> std::io::Result<PrivateKey> {
    use std::io::Write;
    let key = PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    std::fs::write(
        PathBuf::from(pub_path),
        format!("{} {comment}\n", public_line(&key)?),
    )?;
    Ok(key)
}

/// `ssh-ed25519 AAAA...` of a key, without comment.
///
/// # Errors
/// The key cannot be encoded (never for keys russh loaded).
pub fn public_line(key: &PrivateKey) -> std::io::Result<String> {
    key.public_key()
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_private_load_back_and_never_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id");
        let key = generate(&p, "fleetpoll").expect("generate");
        let loaded = load_private_key(&p, None).expect("loads");
        assert_eq!(public_line(&key).ok(), public_line(&loaded).ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            generate(&p, "again").is_err(),
            "an existing key is never overwritten"
        );
    }

    #[test]
    fn one_resolver_reads_files_text_and_sealed_keys_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id");
        let key = generate(&p, "fleetpoll").expect("generate");
        let text = std::fs::read_to_string(&p).expect("read");
        let want = public_line(&key).ok();
        let from_file = resolve(KeySource::File(&p), None).expect("file");
        let from_text = resolve(KeySource::Text(&text), None).expect("text");
        let master = crate::vault::MasterKey::for_sealing(dir.path(), false).expect("master key");
        let sealed = master.seal(text.as_bytes());
        let from_sealed = resolve(
            KeySource::Sealed {
                sealed: &sealed,
                key_dir: dir.path(),
            },
            None,
        )
        .expect("sealed");
        assert_eq!(public_line(&from_file).ok(), want);
        assert_eq!(public_line(&from_text).ok(), want);
        assert_eq!(public_line(&from_sealed).ok(), want);
    }

    #[test]
    fn a_named_but_unset_passphrase_variable_is_an_error_everywhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id");
        generate(&p, "fleetpoll").expect("generate");
        let var = "FLEETPOLL_TEST_PASSPHRASE_NEVER_SET_7F3A";
        for source in [KeySource::File(&p), KeySource::Text("not even a key")] {
            match resolve(source, Some(var)) {
                Err(KeyError::PassphraseUnset(v)) => assert_eq!(v, var),
                other => panic!("{source:?}: {other:?}"),
            }
        }
        assert!(matches!(passphrase_from_env(None), Ok(None)));
    }

    #[test]
    fn a_sealed_key_under_another_master_key_is_refused() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        let sealed = crate::vault::MasterKey::for_sealing(a.path(), false)
            .expect("master key")
            .seal(b"-----BEGIN OPENSSH PRIVATE KEY-----");
        crate::vault::MasterKey::for_sealing(b.path(), false).expect("another master key");
        let e = resolve(
            KeySource::Sealed {
                sealed: &sealed,
                key_dir: b.path(),
            },
            None,
        )
        .expect_err("other master key");
        assert!(matches!(e, KeyError::Vault(_)), "{e}");
    }

    #[test]
    fn fifos_devices_directories_and_huge_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO for reading would wait for a writer forever.
            assert!(matches!(
                load_private_key(&fifo, None),
                Err(KeyError::NotAFile(_))
            ));
        }
        let zero = Path::new("/dev/zero");
        assert!(matches!(
            load_private_key(zero, None),
            Err(KeyError::NotAFile(_))
        ));
        assert!(matches!(
            load_private_key(dir.path(), None),
            Err(KeyError::NotAFile(_))
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'A'; 70 * 1024]).expect("write");
        assert!(matches!(
            load_private_key(&big, None),
            Err(KeyError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn off_async_gives_up_at_the_deadline() {
        let slow = off_async_within(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_millis(1000))
        });
        assert!(slow.await.is_none());
        assert_eq!(
            off_async_within(Duration::from_secs(5), || 7).await,
            Some(7)
        );
    }

    #[test]
    fn passphrase_debug_is_redacted() {
        let p = Passphrase::new("hunter2".into());
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn garbage_file_is_invalid_and_error_omits_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k");
        std::fs::write(&p, "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0c2VjcmV0\n-----END OPENSSH PRIVATE KEY-----\n").expect("write");
        let e = load_private_key(&p, None).expect_err("garbage");
        assert!(matches!(e, KeyError::Invalid { .. }), "{e}");
        assert!(!e.to_string().contains("c2VjcmV0c2VjcmV0"));
    }

    #[test]
    fn public_key_is_refused_with_a_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("k.pub");
        std::fs::write(&p, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMx user@host\n").expect("write");
        assert!(matches!(
            load_private_key(&p, None),
            Err(KeyError::PublicKey(_))
        ));
    }
}
