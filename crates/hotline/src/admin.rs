//! `hotline migrate`, `hotline user add`, `hotline token create`.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use hotline_console::accounts;

use crate::cli::{Role, UserAdd};
use crate::config::Config;
use hotline_store::{NewApiToken, NewUser, Role as StoreRole, Timestamp};

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
    if !accounts::valid_user_name(&args.name) {
        bail!(
            "user name {:?}: use letters, digits, '.', '_' or '-' (at most {})",
            args.name,
            accounts::MAX_NAME_LEN
        );
    }
    let (password, generated) = if args.password_stdin {
        let mut p = String::new();
        std::io::stdin()
            .read_to_string(&mut p)
            .context("reading the password from stdin")?;
        let p = p.trim_end_matches(['\r', '\n']).to_owned();
        if p.len() < accounts::MIN_PASSWORD_LEN {
            bail!(
                "password: at least {} characters",
                accounts::MIN_PASSWORD_LEN
            );
        }
        if p.len() > accounts::MAX_PASSWORD_LEN {
            bail!(
                "password: at most {} characters",
                accounts::MAX_PASSWORD_LEN
            );
        }
        (p, false)
    } else {
        (accounts::generate_password(), true)
    };
    // Argon2id with the crate's default parameters and a random salt; the SIP HA1s over
    // `name:realm:password`, realm = sip.domain.
    let creds = accounts::credentials(&args.name, &config.sip.domain, &password)?;
    let user = NewUser {
        name: args.name.clone(),
        role: match args.role {
            Role::Operator => StoreRole::Operator,
            Role::Supervisor => StoreRole::Supervisor,
            Role::Admin => StoreRole::Admin,
        },
        password_hash: creds.password_hash,
        sip_ha1_md5: Some(creds.sip_ha1_md5),
        sip_ha1_sha256: Some(creds.sip_ha1_sha256),
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
    let (token, hash) = accounts::new_api_token();
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
