//! Creating accounts and minting API tokens: shared by `costd serve` (first start) and the CLI.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::model::token::{new_secret, secret_hash, Scopes};
use crate::store::{Account, NewApiToken, Store};

/// A freshly minted token: the secret exists only here and in what the caller prints.
#[derive(Clone)]
pub struct MintedToken {
    /// Public id (`tkn_…`), for revocation and logs.
    pub id: String,
    /// The secret to put in `Authorization: Bearer …`.
    pub secret: String,
}

/// The secret never appears in Debug output.
impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken").field("id", &self.id).field("secret", &"***").finish()
    }
}

/// Mints a token for `account`, acting as the account's owner user.
pub async fn mint_token(
    store: &dyn Store,
    account: &Account,
    scopes: Scopes,
    description: &str,
) -> anyhow::Result<MintedToken> {
    mint_token_of(store, account, &account.owner_user_token, scopes, description).await
}

/// A new token owned by `user_token` (a user of the account's directory, whose role bounds what the token
/// may do; the account's owner for an account token).
pub async fn mint_token_of(
    store: &dyn Store,
    account: &Account,
    user_token: &str,
    scopes: Scopes,
    description: &str,
) -> anyhow::Result<MintedToken> {
    let secret = new_secret();
    let id = store
        .create_api_token(&NewApiToken {
            account_token: account.token.clone(),
            user_token: user_token.to_string(),
            secret_hash: secret_hash(&secret),
            scopes,
            description: description.to_string(),
        })
        .await?;
    Ok(MintedToken { id, secret })
}

/// What a first start created.
#[derive(Debug)]
pub struct Bootstrap {
    pub account: Account,
    pub token: MintedToken,
    /// Where the token's secret was written (mode 0600).
    pub token_file: PathBuf,
}

/// On an empty store: creates an account with its "Default" workspace and a read/write token, and
/// writes the token to `<data_dir>/bootstrap-token`. Does nothing on a store that has accounts.
pub async fn bootstrap_if_empty(store: &dyn Store, data_dir: &Path) -> anyhow::Result<Option<Bootstrap>> {
    // Nodes started together on one new PostgreSQL store: one bootstraps, the others then find it done.
    let _lock = loop {
        match store.try_lock("costd-bootstrap").await? {
            Some(lock) => break lock,
            None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let account = store.create_account("Default", None).await?;
    let token = mint_token(store, &account, Scopes::READ_WRITE, "bootstrap token").await?;
    crate::store::private_dir(data_dir)
        .with_context(|| format!("failed to create the data dir {}", data_dir.display()))?;
    let token_file = data_dir.join("bootstrap-token");
    write_private(&token_file, &token.secret).with_context(|| format!("failed to write {}", token_file.display()))?;
    Ok(Some(Bootstrap { account, token, token_file }))
}

/// Writes `contents` to a file only its owner can read (0600), replacing any earlier one.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // `mode` applies only when the file is created; an older file keeps its mode otherwise.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{contents}")?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        writeln!(file, "{contents}")?;
        file.sync_all()
    }
}
