//! What every page shares: the [`Layout`] each page template holds (language, user, navigation,
//! CSRF field), the areas of the console and who may open them ([`AREAS`]), and the error
//! pages ([`failure`], rendered by [`finish`]).

use std::sync::OnceLock;

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_store::{Role, StoreError};

use super::i18n::{Lang, t};
use super::redirect_to_signin;
use crate::auth::Identity;
use crate::session::{SignedIn, is_json_path};

/// One area of the console: its path prefix (the area is the prefix and everything under
/// `prefix/`), its navigation label, and the roles that may open it.
#[derive(Debug)]
pub(crate) struct Area {
    /// `/recordings` covers `/recordings`, `/recordings/…`, not `/recordingsx`.
    pub(crate) prefix: &'static str,
    /// Where the navigation link goes (`prefix` or a page under it).
    pub(crate) href: &'static str,
    /// The i18n key of its navigation label.
    pub(crate) label: &'static str,
    pub(crate) roles: &'static [Role],
}

/// The console's areas, in navigation order. The session middleware refuses a page under an
/// area to anyone whose role is not listed (403 page; anonymous: to sign-in) before any handler
/// runs, so a page that forgets its own `require` is still guarded. The navigation shows a
/// user only the areas their role may open.
pub(crate) const AREAS: &[Area] = &[
    Area {
        prefix: "/operator",
        href: "/operator",
        label: "nav.operator",
        // Anyone's own desk (the queue, their call); only operators have a status there.
        roles: Identity::ANYONE,
    },
    Area {
        prefix: "/board",
        href: "/board",
        label: "nav.board",
        roles: Identity::REVIEWERS,
    },
    Area {
        prefix: "/recordings",
        href: "/recordings",
        label: "nav.recordings",
        roles: Identity::REVIEWERS,
    },
    Area {
        prefix: "/audit",
        href: "/audit",
        label: "nav.audit",
        roles: Identity::REVIEWERS,
    },
    Area {
        prefix: "/admin",
        href: "/admin/users",
        label: "nav.users",
        roles: &[Role::Admin],
    },
    Area {
        prefix: "/me",
        href: "/me",
        label: "nav.me",
        roles: Identity::ANYONE,
    },
];

fn area_of(path: &str) -> Option<&'static Area> {
    AREAS.iter().find(|a| {
        path.strip_prefix(a.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The refusal for a request to an area its user may not open, if it is one.
pub(crate) fn area_guard(req: &Request, who: Option<&SignedIn>) -> Option<Response> {
    let area = area_of(req.uri().path())?;
    match who {
        None => Some(redirect_to_signin(req.method(), &here_of(req))),
        Some(s) if !area.roles.contains(&s.role) => {
            tracing::info!(user = %s.user, role = %s.role, path = req.uri().path(), "page refused: role not allowed");
            Some(failure(StatusCode::FORBIDDEN, "error.403"))
        }
        Some(_) => None,
    }
}

fn here_of(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned()
}

/// The user as the layout shows them.
#[derive(Debug, Clone)]
pub(crate) struct LayoutUser {
    pub(crate) name: String,
    pub(crate) role: Role,
    /// The session's CSRF token.
    pub(crate) csrf: String,
}

/// What every page template holds as its `layout` field (see `templates/base.html`).
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) lang: Lang,
    /// The i18n key of the page's title.
    pub(crate) title: &'static str,
    /// `None` on the sign-in page and error pages of anonymous visitors.
    pub(crate) user: Option<LayoutUser>,
    /// This page's path and query (where the language switch comes back to).
    pub(crate) here: String,
    /// The hotline's time zone (IANA name) the page's script shows `<time data-local>` in;
    /// empty on pages that show no time (the browser's zone then).
    pub(crate) zone: String,
}

/// A navigation link.
#[derive(Debug)]
pub(crate) struct NavLink {
    pub(crate) href: &'static str,
    pub(crate) label: &'static str,
    /// The link of the area this page is in.
    pub(crate) current: bool,
}

/// A link of the language switch.
#[derive(Debug)]
pub(crate) struct LangLink {
    pub(crate) href: String,
    pub(crate) name: &'static str,
    pub(crate) code: &'static str,
    pub(crate) current: bool,
}

impl Layout {
    /// `key` in the page's language.
    pub(crate) fn t<'k>(&self, key: &'k str) -> &'k str {
        t(self.lang, key)
    }

    /// The areas the user may open.
    pub(crate) fn nav(&self) -> Vec<NavLink> {
        let Some(user) = &self.user else {
            return Vec::new();
        };
        let path = self.here.split('?').next().unwrap_or("/");
        let current = area_of(path).map(|a| a.prefix);
        AREAS
            .iter()
            .filter(|a| a.roles.contains(&user.role))
            .map(|a| NavLink {
                href: a.href,
                label: a.label,
                current: current == Some(a.prefix),
            })
            .collect()
    }

    /// The language switch: a link per language, back to this page.
    pub(crate) fn langs(&self) -> Vec<LangLink> {
        let back = super::urlencode(&self.here);
        Lang::ALL
            .into_iter()
            .map(|l| LangLink {
                href: format!("/lang/{}?back={back}", l.code()),
                name: l.name(),
                code: l.code(),
                current: l == self.lang,
            })
            .collect()
    }

    /// The i18n key of a role's name.
    pub(crate) fn role_key(role: Role) -> &'static str {
        match role {
            Role::Operator => "role.operator",
            Role::Supervisor => "role.supervisor",
            Role::Admin => "role.admin",
        }
    }

    /// A role's name in the page's language.
    pub(crate) fn role_name(&self, role: &Role) -> &str {
        self.t(Layout::role_key(*role))
    }

    /// The session's CSRF token ("" when nobody is signed in).
    pub(crate) fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.csrf.as_str())
    }

    /// The hidden field every POST form carries: `{{ layout.csrf_input()|safe }}`.
    pub(crate) fn csrf_input(&self) -> String {
        // The token is base64url: nothing to escape.
        format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            crate::session::CSRF_FIELD,
            self.csrf()
        )
    }

    /// The address of the console's script (`static/console.js`).
    pub(crate) fn script(&self) -> &'static str {
        script_path()
    }
}

/// The script's content.
pub(crate) const SCRIPT: &str = include_str!("../../static/console.js");

/// `/static/console.<hash>.js`: a new name for each new content, so it can be cached for a
/// year.
pub(crate) fn script_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let hash = crate::session::hash_token(SCRIPT);
        format!("/static/console.{}.js", &hash[..12])
    })
}

/// A failure a page answers with: its status and the i18n key of its message. The page itself
/// is made by [`finish`], which knows the language and the user.
#[derive(Debug, Clone, Copy)]
struct Failure(&'static str);

/// An error page with `status` and the message `key` (an i18n key), in the request's language
/// and with its user's navigation.
pub(crate) fn failure(status: StatusCode, key: &'static str) -> Response {
    let mut res = status.into_response();
    res.extensions_mut().insert(Failure(key));
    res
}

/// The error page for a store error: 503 when the database is unreachable, else 500. The
/// details go to the log only.
pub(crate) fn failure_from_store(e: StoreError) -> Response {
    if e.is_transient() {
        tracing::warn!(error = %e, "page failed: database unavailable");
        failure(StatusCode::SERVICE_UNAVAILABLE, "error.503")
    } else {
        tracing::error!(error = ?e, "page failed");
        failure(StatusCode::INTERNAL_SERVER_ERROR, "error.500")
    }
}

/// Where a request was going, kept by the session middleware for the error page.
#[derive(Debug)]
pub(crate) struct Here {
    path: String,
    lang: Lang,
    json: bool,
}

impl Here {
    pub(crate) fn of(req: &Request) -> Here {
        Here {
            path: if req.method() == Method::GET {
                here_of(req)
            } else {
                "/".to_owned()
            },
            lang: Lang::of(req.headers()),
            json: is_json_path(req.uri().path()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: &'static str,
}

/// Renders the page of a [`failure`]; any other answer passes as it is.
pub(crate) fn finish(response: Response, here: &Here, who: Option<&SignedIn>) -> Response {
    let Some(Failure(key)) = response.extensions().get::<Failure>().copied() else {
        return response;
    };
    if here.json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let page = ErrorPage {
        layout: Layout {
            lang: here.lang,
            title: "error.title",
            user: who.map(|s| LayoutUser {
                name: s.user.clone(),
                role: s.role,
                csrf: s.csrf.clone(),
            }),
            here: here.path.clone(),
            zone: String::new(),
        },
        status: parts.status.as_u16(),
        message: key,
    };
    let body = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            t(here.lang, key).to_owned()
        }
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas() {
        assert_eq!(area_of("/recordings").unwrap().prefix, "/recordings");
        assert_eq!(area_of("/recordings/01J/x").unwrap().prefix, "/recordings");
        assert!(area_of("/recordingsx").is_none());
        assert_eq!(area_of("/admin/users").unwrap().prefix, "/admin");
        assert!(area_of("/").is_none());
        assert!(area_of("/signin").is_none());
    }

    #[test]
    fn nav_by_role() {
        let layout = |role| Layout {
            lang: Lang::Es,
            title: "me.title",
            user: Some(LayoutUser {
                name: "x".into(),
                role,
                csrf: "c".into(),
            }),
            here: "/me?x=1".into(),
            zone: String::new(),
        };
        let hrefs = |role| -> Vec<&str> { layout(role).nav().iter().map(|l| l.href).collect() };
        assert_eq!(hrefs(Role::Operator), ["/operator", "/me"]);
        assert_eq!(
            hrefs(Role::Supervisor),
            ["/operator", "/board", "/recordings", "/audit", "/me"]
        );
        assert_eq!(
            hrefs(Role::Admin),
            [
                "/operator",
                "/board",
                "/recordings",
                "/audit",
                "/admin/users",
                "/me"
            ]
        );
        let nav = layout(Role::Operator).nav();
        assert!(nav.iter().find(|l| l.href == "/me").unwrap().current);
        assert_eq!(
            layout(Role::Operator).langs()[1].href,
            "/lang/en?back=%2Fme%3Fx%3D1"
        );
        assert!(
            layout(Role::Operator)
                .csrf_input()
                .contains(r#"name="csrf" value="c""#)
        );
    }

    #[test]
    fn script_is_versioned() {
        let p = script_path();
        assert!(
            p.starts_with("/static/console.") && p.ends_with(".js"),
            "{p}"
        );
    }
}
