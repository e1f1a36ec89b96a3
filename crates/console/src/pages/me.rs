//! `GET /me`: who am I, my role, the languages I serve, sign-out. The example page: copy it.
//!
//! The pattern: a `routes()` listing the page, a template struct with a `layout` field, a
//! handler that takes a [`PageUser`] (anonymous visitors go to sign-in), checks the roles,
//! reads what it needs and returns the template (or a [`PageError`], shown as an error page).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::{Layout, PageError, PageUser};
use crate::auth::Identity;
use crate::{AppState, Route};

pub(super) fn routes() -> Vec<Route> {
    vec![Route::get("/me", me)]
}

/// `templates/me.html`.
#[derive(Template, WebTemplate)]
#[template(path = "me.html")]
struct MePage {
    layout: Layout,
    /// The languages the user serves (`es, qu`).
    languages: String,
}

async fn me(State(state): State<AppState>, user: PageUser) -> Result<MePage, PageError> {
    user.require(Identity::ANYONE)?;
    let row = state
        .store()
        .get_user(&user.name)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(MePage {
        layout: user.layout("me.title"),
        languages: row.languages.join(", "),
    })
}
