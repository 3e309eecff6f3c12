//! Integration credentials, sealed at rest.
//!
//! A bucket integration's [`Credentials`] are stored only as `v1:<hex(nonce ‖ XChaCha20-Poly1305 ciphertext)>`,
//! with the integration's token as associated data, so a sealed value copied onto another integration's row
//! does not open. The 32-byte key comes from `--secrets-key` (`COSTD_SECRETS_KEY`, 64 hex digits); without
//! it, from `<data-dir>/secrets.key`, generated (mode 0600) on first use. Nodes sharing a PostgreSQL store
//! must be given the same key: a node that cannot open a secret says so on the integration (`last_error`)
//! rather than failing elsewhere. Credentials are never logged (`Debug` masks them) and never returned.

use std::path::Path;

use anyhow::{bail, Context};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::model::bucket_export::Credentials;

/// The file the key is generated into when no `--secrets-key` is given.
pub const KEY_FILE: &str = "secrets.key";

/// Seals and opens credentials with the server's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> SecretBox {
        SecretBox { cipher: XChaCha20Poly1305::new(&key.into()) }
    }

    /// The key given as 64 hex digits, or the data dir's key file (created on first use).
    pub fn open_or_create(given: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretBox> {
        if let Some(hex_key) = given {
            return Ok(SecretBox::new(parse_key(hex_key).context("--secrets-key")?));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(SecretBox::new(parse_key(&text).with_context(|| format!("{}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::store::private_dir(data_dir)
                    .with_context(|| format!("failed to create the data dir {}", data_dir.display()))?;
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                // create_new: two processes starting at once must not both write a different key.
                match create_private(&path, hex::encode(key).as_bytes()) {
                    Ok(()) => Ok(SecretBox::new(key)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(&path)?;
                        Ok(SecretBox::new(parse_key(&text)?))
                    }
                    Err(e) => Err(e).with_context(|| format!("failed to write {}", path.display())),
                }
            }
            Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Seals `credentials` for the integration `owner`.
    pub fn seal(&self, owner: &str, credentials: &Credentials) -> anyhow::Result<String> {
        let plain = serde_json::to_vec(credentials)?;
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: owner.as_bytes() })
            .map_err(|_| anyhow::anyhow!("failed to seal the credentials"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!("v1:{}", hex::encode(out)))
    }

    /// Opens what [`seal`](Self::seal) made for `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> anyhow::Result<Credentials> {
        let Some(body) = sealed.strip_prefix("v1:") else { bail!("the stored credentials are in an unknown format") };
        let bytes = hex::decode(body).context("the stored credentials are damaged")?;
        if bytes.len() < 24 {
            bail!("the stored credentials are damaged");
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: owner.as_bytes() })
            .map_err(|_| {
                anyhow::anyhow!(
                    "the stored credentials do not open with this server's secrets key (give every node the same \
                     --secrets-key)"
                )
            })?;
        Ok(serde_json::from_slice(&plain)?)
    }
}

/// Writes a new file only its owner can read; fails with `AlreadyExists` if it is there.
fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn parse_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).context("the secrets key must be 64 hex digits")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the secrets key must be 64 hex digits (32 bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::AwsKeys { access_key_id: "AKIA".into(), secret_access_key: "s3cr3t".into(), session_token: None }
    }

    #[test]
    fn sealed_credentials_open_only_for_their_integration_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::open_or_create(None, dir.path()).unwrap();
        let sealed = a.seal("intgr_1", &creds()).unwrap();
        assert!(!sealed.contains("s3cr3t"));
        assert_eq!(a.open("intgr_1", &sealed).unwrap(), creds());
        assert!(a.open("intgr_2", &sealed).is_err(), "copied onto another row");
        // The key file is reused by the next start.
        let again = SecretBox::open_or_create(None, dir.path()).unwrap();
        assert_eq!(again.open("intgr_1", &sealed).unwrap(), creds());
        let other = SecretBox::open_or_create(Some(&"ab".repeat(32)), dir.path()).unwrap();
        assert!(other.open("intgr_1", &sealed).unwrap_err().to_string().contains("--secrets-key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_bad_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SecretBox::open_or_create(Some("xyz"), dir.path()).is_err());
        assert!(SecretBox::open_or_create(Some("abcd"), dir.path()).is_err());
    }
}
