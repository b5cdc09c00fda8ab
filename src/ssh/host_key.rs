//! Trust on first use: the first key a server presents is pinned; any other key later is a
//! change that refuses the connection until an operator trusts it.

use russh::keys::{HashAlg, PublicKeyOrCertificate};

/// The result of checking a presented host key against the pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// No key was pinned; this one should be.
    FirstSeen(String),
    /// The presented key is the pinned one.
    Match(String),
    /// The presented key differs from the pin.
    Changed { pinned: String, presented: String },
}

impl HostKeyCheck {
    pub fn check(pinned: Option<&str>, presented: &str) -> Self {
        match pinned {
            None => Self::FirstSeen(presented.to_string()),
            Some(p) if p == presented => Self::Match(presented.to_string()),
            Some(p) => Self::Changed {
                pinned: p.to_string(),
                presented: presented.to_string(),
            },
        }
    }

    pub fn accepted(&self) -> bool {
        !matches!(self, Self::Changed { .. })
    }
}

/// `SHA256:<base64>`, the form `ssh-keygen -lf` and OpenSSH's own messages use.
pub fn fingerprint(key: &PublicKeyOrCertificate) -> String {
    match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => {
            key.fingerprint(HashAlg::Sha256).to_string()
        }
        // A host certificate is pinned by the key it certifies.
        PublicKeyOrCertificate::Certificate(cert) => {
            russh::keys::PublicKey::from(cert.public_key().clone())
                .fingerprint(HashAlg::Sha256)
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_and_change() {
        assert_eq!(
            HostKeyCheck::check(None, "SHA256:a"),
            HostKeyCheck::FirstSeen("SHA256:a".into())
        );
        assert!(HostKeyCheck::check(Some("SHA256:a"), "SHA256:a").accepted());
        let c = HostKeyCheck::check(Some("SHA256:a"), "SHA256:b");
        assert!(!c.accepted());
        assert_eq!(
            c,
            HostKeyCheck::Changed {
                pinned: "SHA256:a".into(),
                presented: "SHA256:b".into()
            }
        );
    }
}
