//! `hotline migrate`, `hotline user add`, `hotline token create`.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use argon2::PasswordHasher as _;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::cli::{Role, UserAdd};
use crate::config::Config;
use hotline_store::{NewApiToken, NewUser, Role as StoreRole, Timestamp, TokenHash};

/// Applies the migrations and exits.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = crate::storage::connect(config).await?;
    store.migrate().await.context("applying migrations")?;
    println!("migrations applied ({:?})", store.backend());
    store.close().await;
    Ok(())
}

/// Creates a console user; operators register their softphone with the same
/// name and password (the SIP digest HA1s are stored, never the password).
pub async fn user_add(config: &Config, args: &UserAdd) -> anyhow::Result<()> {
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!(
            "user name {:?}: use letters, digits, '.', '_' or '-'",
            args.name
        );
    }
    let (password, generated) = if args.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .context("reading the password from stdin")?;
        let p = p.trim_end_matches(['\r', '\n']).to_owned();
        if p.len() < 10 {
            bail!("password: at least 10 characters");
        }
        (p, false)
    } else {
        (generate_password(), true)
    };
    // Argon2id with the crate's default parameters and a random salt.
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    let realm = &config.sip.domain;
    let user = NewUser {
        name: args.name.clone(),
        role: match args.role {
            Role::Operator => StoreRole::Operator,
            Role::Supervisor => StoreRole::Supervisor,
            Role::Admin => StoreRole::Admin,
        },
        password_hash: hash,
        sip_ha1_md5: Some(hex(&Md5::digest(format!(
            "{}:{realm}:{password}",
            args.name
        )))),
        sip_ha1_sha256: Some(hex(&Sha256::digest(format!(
            "{}:{realm}:{password}",
            args.name
        )))),
        languages: vec!["es".into()],
        created_at: Timestamp::now(),
    };
    let store = crate::storage::connect(config).await?;
    store.migrate().await.context("applying migrations")?;
    store
        .create_user(&user)
        .await
        .with_context(|| format!("creating user {}", args.name))?;
    store.close().await;
    if generated {
        println!(
            "user {} created; password (shown once): {password}",
            args.name
        );
    } else {
        println!("user {} created", args.name);
    }
    Ok(())
}

/// Prints a new API token for a user (only its SHA-256 is stored).
pub async fn token_create(config: &Config, name: &str) -> anyhow::Result<()> {
    let store = crate::storage::connect(config).await?;
    store.migrate().await.context("applying migrations")?;
    if store.get_user(name).await?.is_none() {
        bail!("no user {name:?}: create it with `hotline user add`");
    }
    let (token, hash) = TokenHash::generate();
    store
        .create_api_token(&NewApiToken {
            hash,
            user: name.to_owned(),
            label: "cli".into(),
            created_at: Timestamp::now(),
        })
        .await?;
    store.close().await;
    println!("{token}");
    Ok(())
}

/// 20 characters from an unambiguous alphabet (~115 bits).
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
