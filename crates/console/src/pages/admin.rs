//! `/admin/users`: console accounts (operators' softphone accounts too), their roles, languages,
//! passwords and API tokens. Admins only.
//!
//! # Pages
//! - `GET /admin/users`: every user, and the form to add one. `POST /admin/users` adds it: a
//!   password typed by the admin (at least 10 characters) or, left empty, a generated one shown
//!   once on the answer (201), never stored in clear. The store keeps the argon2 hash and the
//!   SIP digest HA1s over `name:sip.domain:password` (`crate::accounts`, shared with the CLI).
//! - `GET /admin/users/{name}`: one user. Its forms: `POST /admin/users/{name}` (role and
//!   languages), `…/disable` and `…/enable` (disabling ends the user's sessions),
//!   `…/password` (a new generated password, shown once; ends the user's sessions),
//!   `…/tokens` (a new API token, shown once) and `…/tokens/revoke` (by the token's hash).
//!
//! # Rules
//! - An admin cannot disable or demote themself (409, the page says why): there is always an
//!   admin left who can sign in.
//! - Bad input answers 400 with the form again and a message naming the field; a taken name
//!   409; an unknown user or token 404.
//! - Every change writes an audit line (`user.add`, `user.role`, `user.languages`,
//!   `user.disable`, `user.enable`, `user.password_reset`, `token.create`, `token.revoke`)
//!   **before** it is made, once the request is known to be valid: if the line cannot be
//!   written, nothing changes (503). No secret ever goes into an audit line or the log.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hotline_store::{
    NewApiToken, NewAuditEntry, NewUser, Role, StoreError, TokenHash, User, UserUpdate, new_id,
};
use serde::Deserialize;

use super::{Layout, PageError, PageUser, failure, see_other, urlencode};
use crate::accounts::{self, Credentials, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use crate::{AppState, Route};

/// This area's pages.
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::get("/admin/users", list),
        Route::post("/admin/users", add),
        Route::get("/admin/users/{name}", show),
        Route::post("/admin/users/{name}", update),
        Route::post("/admin/users/{name}/disable", disable),
        Route::post("/admin/users/{name}/enable", enable),
        Route::post("/admin/users/{name}/password", reset_password),
        Route::post("/admin/users/{name}/tokens", create_token),
        Route::post("/admin/users/{name}/tokens/revoke", revoke_token),
    ]
}

/// Who may open these pages.
const ADMINS: &[Role] = &[Role::Admin];

/// The languages an operator can take calls in, as the checkboxes offer them (the queue offers
/// Quechua callers first to Quechua speakers).
const LANGUAGES: &[(&str, &str)] = &[("es", "admin.lang_es"), ("qu", "admin.lang_qu")];

/// Longest token label.
const MAX_LABEL_LEN: usize = 100;

/// What a page says above its content: an i18n key, and the i18n key of the field it is about.
#[derive(Debug, Clone, Copy)]
struct Message {
    key: &'static str,
    /// The field's label (`admin.name`, …), for a refusal that names it.
    field: Option<&'static str>,
    /// A confirmation (green) rather than a refusal.
    ok: bool,
}

impl Message {
    fn refusal(field: Option<&'static str>, key: &'static str) -> Message {
        Message {
            key,
            field,
            ok: false,
        }
    }
}

/// A `<select>` option of the role.
#[derive(Debug)]
struct RoleOption {
    value: &'static str,
    key: &'static str,
    selected: bool,
}

fn role_options(selected: Role) -> Vec<RoleOption> {
    Role::ALL
        .iter()
        .map(|&r| RoleOption {
            value: r.as_str(),
            key: Layout::role_key(r),
            selected: r == selected,
        })
        .collect()
}

/// A language checkbox.
#[derive(Debug)]
struct LangOption {
    code: &'static str,
    key: &'static str,
    checked: bool,
}

fn lang_options(checked: &[String]) -> Vec<LangOption> {
    LANGUAGES
        .iter()
        .map(|&(code, key)| LangOption {
            code,
            key,
            checked: checked.iter().any(|l| l == code),
        })
        .collect()
}

/// `2026-11-01 07:34` in the hotline's time zone.
fn short_time(zone: &hotline_store::Zone, t: hotline_store::Timestamp) -> String {
    zone.minute_text(t)
}

/// A user as the list shows them.
#[derive(Debug)]
struct UserRow {
    name: String,
    /// Path-safe link to the user's page.
    href: String,
    role: Role,
    languages: String,
    disabled: bool,
    created: String,
}

impl UserRow {
    fn of(zone: &hotline_store::Zone, u: &User) -> UserRow {
        UserRow {
            name: u.name.clone(),
            href: user_path(&u.name),
            role: u.role,
            languages: u.languages.join(", "),
            disabled: u.disabled,
            created: short_time(zone, u.created_at),
        }
    }
}

fn user_path(name: &str) -> String {
    format!("/admin/users/{}", urlencode(name))
}

/// `templates/admin_users.html`: the list and the add form.
#[derive(Template, WebTemplate)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserRow>,
    message: Option<Message>,
    /// The add form's values (kept after a refusal; never the password).
    name: String,
    roles: Vec<RoleOption>,
    langs: Vec<LangOption>,
    min_password: usize,
}

async fn users_page(
    state: &AppState,
    user: &PageUser,
    message: Option<Message>,
    form: Option<&AddForm>,
) -> Result<UsersPage, PageError> {
    let users = state.store().list_users().await?;
    let (name, role, langs) = match form {
        Some(f) => (f.name.trim().to_owned(), f.role.parse().ok(), f.languages()),
        None => (String::new(), None, vec!["es".to_owned()]),
    };
    Ok(UsersPage {
        layout: user.layout("admin.users_title"),
        users: users.iter().map(|u| UserRow::of(&user.zone, u)).collect(),
        message,
        name,
        roles: role_options(role.unwrap_or(Role::Operator)),
        langs: lang_options(&langs),
        min_password: MIN_PASSWORD_LEN,
    })
}

#[derive(Debug, Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// The confirmation of `?done=…` (after a POST's redirect).
fn done_message(query: &Result<Query<DoneQuery>, QueryRejection>) -> Option<Message> {
    let done = query.as_ref().ok()?.0.done.as_deref()?;
    let key = match done {
        "saved" => "admin.done_saved",
        "disabled" => "admin.done_disabled",
        "enabled" => "admin.done_enabled",
        "revoked" => "admin.done_revoked",
        _ => return None,
    };
    Some(Message {
        key,
        field: None,
        ok: true,
    })
}

/// `GET /admin/users`.
async fn list(
    State(state): State<AppState>,
    user: PageUser,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Result<UsersPage, PageError> {
    user.require(ADMINS)?;
    users_page(&state, &user, done_message(&query), None).await
}

/// The add form. Unknown fields (the CSRF token) are ignored.
#[derive(Debug, Default, Deserialize)]
struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    /// Checkboxes: present when ticked.
    lang_es: Option<String>,
    lang_qu: Option<String>,
    #[serde(default)]
    password: String,
}

impl AddForm {
    fn languages(&self) -> Vec<String> {
        languages_of(self.lang_es.is_some(), self.lang_qu.is_some())
    }
}

fn languages_of(es: bool, qu: bool) -> Vec<String> {
    let mut v = Vec::new();
    if es {
        v.push("es".to_owned());
    }
    if qu {
        v.push("qu".to_owned());
    }
    v
}

/// A page answered with `status`.
fn with_status(status: StatusCode, page: impl IntoResponse) -> Response {
    (status, page).into_response()
}

/// The admin's audit line, written before the change it records; `Err` (a 503 page) when it
/// cannot be written, and then nothing changes.
async fn audit(
    state: &AppState,
    who: &PageUser,
    action: &str,
    detail: String,
) -> Result<(), Response> {
    let entry = NewAuditEntry {
        id: new_id(),
        at: state.now(),
        user: Some(who.name.clone()),
        action: action.to_owned(),
        recording_id: None,
        source: Some(who.source.clone()),
        detail,
    };
    match state.store().append_audit(&entry).await {
        Ok(()) => {
            tracing::info!(admin = %who.name, action, detail = %entry.detail, "admin action");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, admin = %who.name, action, "audit write failed: the change is not made");
            Err(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "admin.audit_failed",
            ))
        }
    }
}

/// Hashes off the async threads (argon2 takes tens of ms of CPU).
async fn hash_credentials(
    name: &str,
    realm: &str,
    password: &str,
) -> Result<Credentials, Response> {
    let (name, realm, password) = (name.to_owned(), realm.to_owned(), password.to_owned());
    match tokio::task::spawn_blocking(move || accounts::credentials(&name, &realm, &password)).await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "password hashing failed");
            Err(failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500"))
        }
        Err(e) => {
            tracing::error!(error = %e, "password hashing task failed");
            Err(failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500"))
        }
    }
}

/// The layout of a page answered to a POST: its language switch comes back to `back` (a page
/// that can be opened again), not to the form's target.
fn layout_back_to(user: &PageUser, title: &'static str, back: &str) -> Layout {
    let mut layout = user.layout(title);
    layout.here = back.to_owned();
    layout
}

/// `templates/admin_secret.html`: a password or token, shown this once.
#[derive(Template, WebTemplate)]
#[template(path = "admin_secret.html")]
struct SecretPage {
    layout: Layout,
    /// What happened (i18n key).
    heading: &'static str,
    /// The user it is about.
    name: String,
    back: String,
    /// What the secret is (i18n key: password or token).
    what: &'static str,
    secret: String,
    /// The SIP domain the softphone registers to (passwords only).
    sip_domain: Option<String>,
    /// Whether the secret is the signed-in admin's own new password (they are signed out).
    own: bool,
}

/// `POST /admin/users`: adds a user.
async fn add(
    State(state): State<AppState>,
    user: PageUser,
    form: Result<Form<AddForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest);
    };
    let refuse = async |status, field, key| -> Result<Response, PageError> {
        let page = users_page(
            &state,
            &user,
            Some(Message::refusal(Some(field), key)),
            Some(&form),
        )
        .await?;
        Ok(with_status(status, page))
    };
    let name = form.name.trim();
    if !accounts::valid_user_name(name) {
        return refuse(StatusCode::BAD_REQUEST, "admin.name", "admin.bad_name").await;
    }
    let Ok(role) = form.role.parse::<Role>() else {
        return refuse(StatusCode::BAD_REQUEST, "admin.role", "admin.bad_role").await;
    };
    let languages = form.languages();
    if languages.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "admin.languages",
            "admin.bad_languages",
        )
        .await;
    }
    let generated = form.password.is_empty();
    if !generated && form.password.chars().count() < MIN_PASSWORD_LEN {
        return refuse(
            StatusCode::BAD_REQUEST,
            "admin.password",
            "admin.short_password",
        )
        .await;
    }
    if form.password.len() > MAX_PASSWORD_LEN {
        return refuse(
            StatusCode::BAD_REQUEST,
            "admin.password",
            "admin.long_password",
        )
        .await;
    }
    if state.store().get_user(name).await?.is_some() {
        return refuse(StatusCode::CONFLICT, "admin.name", "admin.taken").await;
    }
    let password = if generated {
        accounts::generate_password()
    } else {
        form.password.clone()
    };
    let realm = state.console().sip_domain.clone();
    let creds = match hash_credentials(name, &realm, &password).await {
        Ok(c) => c,
        Err(res) => return Ok(res),
    };
    if let Err(res) = audit(
        &state,
        &user,
        "user.add",
        format!(
            "user={name} role={role} languages={} password={}",
            languages.join(","),
            if generated { "generated" } else { "typed" }
        ),
    )
    .await
    {
        return Ok(res);
    }
    let created = state
        .store()
        .create_user(&NewUser {
            name: name.to_owned(),
            role,
            password_hash: creds.password_hash,
            sip_ha1_md5: Some(creds.sip_ha1_md5),
            sip_ha1_sha256: Some(creds.sip_ha1_sha256),
            languages,
            created_at: state.now(),
        })
        .await;
    match created {
        Ok(()) => {}
        // Added by someone else since the check.
        Err(StoreError::Conflict(_)) => {
            return refuse(StatusCode::CONFLICT, "admin.name", "admin.taken").await;
        }
        Err(e) => return Err(e.into()),
    }
    if !generated {
        return Ok(see_other(&user_path(name)));
    }
    let page = SecretPage {
        layout: layout_back_to(&user, "admin.created_title", &user_path(name)),
        heading: "admin.created",
        name: name.to_owned(),
        back: user_path(name),
        what: "admin.password",
        secret: password,
        sip_domain: Some(realm),
        own: false,
    };
    Ok(with_status(StatusCode::CREATED, page))
}

/// An API token as the user's page lists it (never the token: its hash's first characters).
#[derive(Debug)]
struct TokenRow {
    /// The stored hash (hex), for the revoke form.
    hash: String,
    /// Its first 12 characters, to tell tokens apart.
    short: String,
    label: String,
    created: String,
}

/// `templates/admin_user.html`: one user.
#[derive(Template, WebTemplate)]
#[template(path = "admin_user.html")]
struct UserPage {
    layout: Layout,
    message: Option<Message>,
    name: String,
    /// This page's path (the forms' targets start with it).
    path: String,
    disabled: bool,
    created: String,
    /// Whether the user has SIP HA1s (can register a softphone).
    sip: bool,
    roles: Vec<RoleOption>,
    langs: Vec<LangOption>,
    /// Languages stored that the checkboxes do not offer (kept as they are).
    other_languages: String,
    tokens: Vec<TokenRow>,
    /// The signed-in admin's own page (cannot disable or demote themself).
    own: bool,
}

async fn user_page(
    state: &AppState,
    user: &PageUser,
    name: &str,
    message: Option<Message>,
) -> Result<UserPage, PageError> {
    let row = state
        .store()
        .get_user(name)
        .await?
        .ok_or(PageError::NotFound)?;
    let tokens = state.store().list_api_tokens(name).await?;
    Ok(UserPage {
        layout: user.layout("admin.user_title"),
        message,
        path: user_path(&row.name),
        disabled: row.disabled,
        created: short_time(&user.zone, row.created_at),
        sip: row.sip_ha1_md5.is_some() || row.sip_ha1_sha256.is_some(),
        roles: role_options(row.role),
        langs: lang_options(&row.languages),
        other_languages: other_languages(&row.languages).join(", "),
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                hash: t.hash.as_str().to_owned(),
                short: t.hash.as_str().chars().take(12).collect(),
                label: t.label.clone(),
                created: short_time(&user.zone, t.created_at),
            })
            .collect(),
        own: row.name == user.name,
        name: row.name,
    })
}

fn other_languages(languages: &[String]) -> Vec<String> {
    languages
        .iter()
        .filter(|l| !LANGUAGES.iter().any(|(c, _)| c == l))
        .cloned()
        .collect()
}

/// `GET /admin/users/{name}`.
async fn show(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Result<UserPage, PageError> {
    user.require(ADMINS)?;
    user_page(&state, &user, &name, done_message(&query)).await
}

/// The user's page again with a refusal, answered with `status`.
async fn refuse_on_user(
    state: &AppState,
    user: &PageUser,
    name: &str,
    status: StatusCode,
    message: Message,
) -> Result<Response, PageError> {
    let mut page = user_page(state, user, name, Some(message)).await?;
    // The language switch comes back to the page, not to the form's target.
    page.layout.here = page.path.clone();
    Ok(with_status(status, page))
}

/// The target user, or a 404 page.
async fn target(state: &AppState, name: &str) -> Result<User, PageError> {
    state
        .store()
        .get_user(name)
        .await?
        .ok_or(PageError::NotFound)
}

/// Role and languages.
#[derive(Debug, Deserialize)]
struct UpdateForm {
    #[serde(default)]
    role: String,
    lang_es: Option<String>,
    lang_qu: Option<String>,
}

/// `POST /admin/users/{name}`: role and languages.
async fn update(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    form: Result<Form<UpdateForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest);
    };
    let current = target(&state, &name).await?;
    let Ok(role) = form.role.parse::<Role>() else {
        return refuse_on_user(
            &state,
            &user,
            &name,
            StatusCode::BAD_REQUEST,
            Message::refusal(Some("admin.role"), "admin.bad_role"),
        )
        .await;
    };
    let mut languages = languages_of(form.lang_es.is_some(), form.lang_qu.is_some());
    if languages.is_empty() {
        return refuse_on_user(
            &state,
            &user,
            &name,
            StatusCode::BAD_REQUEST,
            Message::refusal(Some("admin.languages"), "admin.bad_languages"),
        )
        .await;
    }
    languages.extend(other_languages(&current.languages));
    if current.name == user.name && role != Role::Admin {
        return refuse_on_user(
            &state,
            &user,
            &name,
            StatusCode::CONFLICT,
            Message::refusal(Some("admin.role"), "admin.no_self_demote"),
        )
        .await;
    }
    let mut update = UserUpdate::default();
    if role != current.role {
        if let Err(res) = audit(
            &state,
            &user,
            "user.role",
            format!("user={name} role={} -> {role}", current.role),
        )
        .await
        {
            return Ok(res);
        }
        update.role = Some(role);
    }
    if languages != current.languages {
        if let Err(res) = audit(
            &state,
            &user,
            "user.languages",
            format!(
                "user={name} languages={} -> {}",
                current.languages.join(","),
                languages.join(",")
            ),
        )
        .await
        {
            return Ok(res);
        }
        update.languages = Some(languages);
    }
    if update != UserUpdate::default() {
        state.store().update_user(&name, &update).await?;
    }
    Ok(see_other(&format!("{}?done=saved", user_path(&name))))
}

/// `POST /admin/users/{name}/disable`: the user can no longer sign in, use a token or register
/// a softphone with the console's accounts; their sessions end now.
async fn disable(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let current = target(&state, &name).await?;
    if current.name == user.name {
        return refuse_on_user(
            &state,
            &user,
            &name,
            StatusCode::CONFLICT,
            Message::refusal(None, "admin.no_self_disable"),
        )
        .await;
    }
    if !current.disabled {
        if let Err(res) = audit(&state, &user, "user.disable", format!("user={name}")).await {
            return Ok(res);
        }
        state
            .store()
            .update_user(
                &name,
                &UserUpdate {
                    disabled: Some(true),
                    ..UserUpdate::default()
                },
            )
            .await?;
    }
    let ended = state.store().delete_user_sessions(&name).await?;
    tracing::info!(user = %name, sessions = ended, "user disabled: sessions ended");
    Ok(see_other(&format!("{}?done=disabled", user_path(&name))))
}

/// `POST /admin/users/{name}/enable`.
async fn enable(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let current = target(&state, &name).await?;
    if current.disabled {
        if let Err(res) = audit(&state, &user, "user.enable", format!("user={name}")).await {
            return Ok(res);
        }
        state
            .store()
            .update_user(
                &name,
                &UserUpdate {
                    disabled: Some(false),
                    ..UserUpdate::default()
                },
            )
            .await?;
    }
    Ok(see_other(&format!("{}?done=enabled", user_path(&name))))
}

/// `POST /admin/users/{name}/password`: a new generated password, shown once; the old one and
/// the user's sessions end.
async fn reset_password(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let current = target(&state, &name).await?;
    let password = accounts::generate_password();
    let realm = state.console().sip_domain.clone();
    let creds = match hash_credentials(&current.name, &realm, &password).await {
        Ok(c) => c,
        Err(res) => return Ok(res),
    };
    if let Err(res) = audit(&state, &user, "user.password_reset", format!("user={name}")).await {
        return Ok(res);
    }
    state
        .store()
        .update_user(
            &name,
            &UserUpdate {
                password_hash: Some(creds.password_hash),
                sip_ha1_md5: Some(creds.sip_ha1_md5),
                sip_ha1_sha256: Some(creds.sip_ha1_sha256),
                ..UserUpdate::default()
            },
        )
        .await?;
    let ended = state.store().delete_user_sessions(&name).await?;
    tracing::info!(user = %name, sessions = ended, "password reset: sessions ended");
    let own = current.name == user.name;
    let page = SecretPage {
        layout: layout_back_to(&user, "admin.reset_title", &user_path(&current.name)),
        heading: "admin.reset_done",
        name: current.name.clone(),
        back: user_path(&current.name),
        what: "admin.password",
        secret: password,
        sip_domain: Some(realm),
        own,
    };
    Ok(page.into_response())
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    label: String,
}

/// `POST /admin/users/{name}/tokens`: a new API token acting as the user, shown once.
async fn create_token(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest);
    };
    let current = target(&state, &name).await?;
    let label = form.label.trim();
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_LEN
        || label.chars().any(char::is_control)
    {
        return refuse_on_user(
            &state,
            &user,
            &name,
            StatusCode::BAD_REQUEST,
            Message::refusal(Some("admin.token_label"), "admin.bad_label"),
        )
        .await;
    }
    let (token, hash) = accounts::new_api_token();
    if let Err(res) = audit(
        &state,
        &user,
        "token.create",
        format!("user={name} token={} label={label}", &hash.as_str()[..12]),
    )
    .await
    {
        return Ok(res);
    }
    state
        .store()
        .create_api_token(&NewApiToken {
            hash,
            user: current.name.clone(),
            label: label.to_owned(),
            created_at: state.now(),
        })
        .await?;
    let page = SecretPage {
        layout: layout_back_to(&user, "admin.token_title", &user_path(&current.name)),
        heading: "admin.token_created",
        name: current.name.clone(),
        back: user_path(&current.name),
        what: "admin.token",
        secret: token,
        sip_domain: None,
        own: false,
    };
    Ok(page.into_response())
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    #[serde(default)]
    token: String,
}

/// `POST /admin/users/{name}/tokens/revoke`: `token` is the stored hash (hex) of one of the
/// user's tokens.
async fn revoke_token(
    State(state): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Result<Response, PageError> {
    user.require(ADMINS)?;
    let Ok(Form(form)) = form else {
        return Err(PageError::BadRequest);
    };
    let current = target(&state, &name).await?;
    let Some(hash) = TokenHash::from_hex(form.token.trim()) else {
        return Err(PageError::BadRequest);
    };
    let tokens = state.store().list_api_tokens(&current.name).await?;
    if !tokens.iter().any(|t| t.hash == hash) {
        return Err(PageError::NotFound);
    }
    if let Err(res) = audit(
        &state,
        &user,
        "token.revoke",
        format!("user={name} token={}", &hash.as_str()[..12]),
    )
    .await
    {
        return Ok(res);
    }
    state.store().delete_api_token(&hash).await?;
    Ok(see_other(&format!("{}?done=revoked", user_path(&name))))
}

/// This area's texts: `(key, Spanish, English)` (see `i18n`).
pub(super) const I18N: &[(&str, &str, &str)] = &[
    ("admin.users_title", "Usuarios", "Users"),
    ("admin.user_title", "Usuario", "User"),
    ("admin.created_title", "Usuario creado", "User created"),
    ("admin.reset_title", "Contraseña nueva", "New password"),
    ("admin.token_title", "Token de API nuevo", "New API token"),
    ("admin.name", "Usuario", "User name"),
    ("admin.role", "Rol", "Role"),
    ("admin.languages", "Idiomas de atención", "Languages served"),
    ("admin.lang_es", "Castellano", "Spanish"),
    ("admin.lang_qu", "Quechua", "Quechua"),
    ("admin.password", "Contraseña", "Password"),
    ("admin.token", "Token", "Token"),
    ("admin.created_at", "Creado", "Created"),
    ("admin.state", "Estado", "State"),
    ("admin.active", "Activo", "Active"),
    ("admin.disabled", "Desactivado", "Disabled"),
    ("admin.open", "Abrir", "Open"),
    ("admin.none", "Ninguno", "None"),
    ("admin.add_title", "Agregar usuario", "Add a user"),
    ("admin.add", "Agregar", "Add"),
    (
        "admin.name_hint",
        "Letras, dígitos, punto, guion o guion bajo (máx. 64). Es también el usuario SIP del softphone.",
        "Letters, digits, dot, dash or underscore (64 at most). It is also the softphone's SIP user name.",
    ),
    (
        "admin.password_hint",
        "Déjela vacía para generar una; se mostrará una sola vez. Si la escribe: al menos",
        "Leave it empty to generate one; it is shown once. If you type one: at least",
    ),
    ("admin.characters", "caracteres.", "characters."),
    (
        "admin.languages_hint",
        "Las llamadas en quechua se ofrecen primero a quienes hablan quechua.",
        "Quechua callers are offered first to Quechua speakers.",
    ),
    ("admin.back", "Volver a la lista", "Back to the list"),
    ("admin.back_user", "Volver al usuario", "Back to the user"),
    ("admin.save", "Guardar", "Save"),
    (
        "admin.other_languages",
        "Otros idiomas guardados",
        "Other languages stored",
    ),
    ("admin.sip", "Cuenta SIP", "SIP account"),
    (
        "admin.sip_yes",
        "Sí (softphone con el mismo usuario y contraseña)",
        "Yes (softphone with the same name and password)",
    ),
    ("admin.sip_no", "No", "No"),
    ("admin.access_title", "Acceso", "Access"),
    ("admin.disable", "Desactivar", "Disable"),
    ("admin.enable", "Reactivar", "Enable"),
    (
        "admin.disable_hint",
        "Desactivar cierra sus sesiones abiertas y bloquea sus tokens de API.",
        "Disabling ends their open sessions and blocks their API tokens.",
    ),
    (
        "admin.reset",
        "Generar contraseña nueva",
        "Generate a new password",
    ),
    (
        "admin.reset_hint",
        "La contraseña actual deja de servir (también en el softphone) y se cierran sus sesiones.",
        "The current password stops working (on the softphone too) and their sessions end.",
    ),
    (
        "admin.own_hint",
        "Es su propia cuenta: no puede desactivarla ni quitarse el rol de administrador.",
        "This is your own account: you cannot disable it or give up the administrator role.",
    ),
    ("admin.tokens_title", "Tokens de API", "API tokens"),
    (
        "admin.tokens_hint",
        "Un token actúa con el rol de este usuario. Solo se guarda su huella; el token se muestra una vez.",
        "A token acts with this user's role. Only its fingerprint is stored; the token is shown once.",
    ),
    ("admin.token_id", "Huella", "Fingerprint"),
    ("admin.token_label", "Uso", "Purpose"),
    ("admin.token_create", "Crear token", "Create a token"),
    ("admin.revoke", "Revocar", "Revoke"),
    ("admin.no_tokens", "Sin tokens.", "No tokens."),
    ("admin.created", "Usuario creado", "User created"),
    (
        "admin.reset_done",
        "Contraseña cambiada",
        "Password changed",
    ),
    ("admin.token_created", "Token creado", "Token created"),
    (
        "admin.shown_once",
        "Cópielo ahora y entréguelo por un canal seguro: no se volverá a mostrar ni se guarda en claro.",
        "Copy it now and hand it over by a safe channel: it will not be shown again and is not stored in clear.",
    ),
    ("admin.for_user", "Usuario", "User"),
    ("admin.sip_domain", "Dominio SIP", "SIP domain"),
    (
        "admin.own_reset",
        "Era su propia contraseña: su sesión se cerró. Vuelva a iniciar sesión con la nueva.",
        "It was your own password: your session ended. Sign in again with the new one.",
    ),
    ("admin.error", "No se pudo:", "Not done:"),
    (
        "admin.bad_name",
        "use solo letras, dígitos, punto, guion o guion bajo (entre 1 y 64).",
        "use only letters, digits, dot, dash or underscore (1 to 64).",
    ),
    (
        "admin.bad_role",
        "elija operador(a), supervisor(a) o administrador(a).",
        "choose operator, supervisor or administrator.",
    ),
    (
        "admin.bad_languages",
        "marque al menos un idioma.",
        "tick at least one language.",
    ),
    (
        "admin.short_password",
        "demasiado corta (al menos 10 caracteres), o déjela vacía para generar una.",
        "too short (10 characters at least), or leave it empty to generate one.",
    ),
    (
        "admin.long_password",
        "demasiado larga (256 caracteres como máximo).",
        "too long (256 characters at most).",
    ),
    (
        "admin.taken",
        "ya existe un usuario con ese nombre.",
        "a user with that name already exists.",
    ),
    (
        "admin.bad_label",
        "escriba para qué es (entre 1 y 100 caracteres).",
        "say what it is for (1 to 100 characters).",
    ),
    (
        "admin.no_self_demote",
        "no puede quitarse a sí mismo el rol de administrador. Pídaselo a otro administrador.",
        "you cannot give up your own administrator role. Ask another administrator.",
    ),
    (
        "admin.no_self_disable",
        "no puede desactivar su propia cuenta. Pídaselo a otro administrador.",
        "you cannot disable your own account. Ask another administrator.",
    ),
    ("admin.done_saved", "Cambios guardados.", "Changes saved."),
    (
        "admin.done_disabled",
        "Usuario desactivado; sus sesiones se cerraron.",
        "User disabled; their sessions ended.",
    ),
    ("admin.done_enabled", "Usuario reactivado.", "User enabled."),
    ("admin.done_revoked", "Token revocado.", "Token revoked."),
    (
        "admin.audit_failed",
        "No se pudo escribir el registro de auditoría: el cambio no se hizo. Inténtelo de nuevo en unos minutos.",
        "The audit log could not be written: the change was not made. Try again in a few minutes.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_languages() {
        assert_eq!(
            short_time(
                &hotline_store::Zone::lima(),
                hotline_store::Timestamp::from_unix_millis(1_793_536_496_000)
            ),
            "2026-11-01 07:34"
        );
        assert_eq!(languages_of(true, true), ["es", "qu"]);
        assert_eq!(
            other_languages(&["es".into(), "en".into(), "qu".into()]),
            ["en"]
        );
        assert_eq!(user_path("a.b"), "/admin/users/a.b");
    }

    #[test]
    fn every_message_key_is_in_the_table() {
        let keys: Vec<&str> = I18N.iter().map(|(k, _, _)| *k).collect();
        for done in ["saved", "disabled", "enabled", "revoked"] {
            let q: Result<Query<DoneQuery>, QueryRejection> = Ok(Query(DoneQuery {
                done: Some(done.into()),
            }));
            let m = done_message(&q).unwrap();
            assert!(keys.contains(&m.key), "{}", m.key);
        }
        for role in Role::ALL {
            assert!(!Layout::role_key(*role).is_empty());
        }
        for (_, key) in LANGUAGES {
            assert!(keys.contains(key), "{key}");
        }
        // Every `"admin.…"` literal of this file (the messages are keys passed around, not
        // `t("…")` calls the crate-wide scan sees).
        let src = include_str!("admin.rs");
        for (i, _) in src.match_indices("\"admin.") {
            let rest = &src[i + 1..];
            let key = &rest[..rest.find('"').unwrap()];
            if key != "admin.rs"
                && key.len() > 6
                && key[6..]
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c == b'_')
            {
                assert!(keys.contains(&key), "{key} missing");
            }
        }
    }
}
