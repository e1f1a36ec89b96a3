//! The console's words in Spanish (the default) and English: [`t`]`(lang, key)`.
//!
//! Tables of `(key, es, en)`: the layout's [`TABLE`] here, and each page module's own
//! `pub(super) const I18N` (listed in [`TABLES`]). Keys are `area.what` (`signin.user`,
//! `nav.board`). A page module adds its keys to its own `I18N`, Spanish first. A missing key shows as
//! the key itself (and a test fails: every `t("…")` in `templates/` and `src/pages/` must be in
//! the table).
//!
//! The language is the `lang` cookie (`es` or `en`), set by `GET /lang/{es|en}?back=…`;
//! Spanish without it.

use std::fmt;

use axum::http::HeaderMap;

use crate::session::cookie;

/// The cookie that holds the language.
pub(crate) const LANG_COOKIE: &str = "lang";

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    /// Spanish: the default.
    #[default]
    Es,
    /// English.
    En,
}

impl Lang {
    /// Every language, in the order the switch shows them.
    pub(crate) const ALL: [Lang; 2] = [Lang::Es, Lang::En];

    /// The code: `es`, `en` (also the `lang` attribute of the page).
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    /// The language of a code.
    pub(crate) fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The request's language: its `lang` cookie, else Spanish.
    pub(crate) fn of(headers: &HeaderMap) -> Lang {
        cookie(headers, LANG_COOKIE)
            .and_then(Lang::from_code)
            .unwrap_or_default()
    }

    /// The language's own name (for the switch).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Lang::Es => "Español",
            Lang::En => "English",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// `key` in `lang`; the key itself if the table does not have it.
pub(crate) fn t(lang: Lang, key: &str) -> &str {
    match all().find(|(k, _, _)| *k == key) {
        Some((_, es, en)) => match lang {
            Lang::Es => es,
            Lang::En => en,
        },
        None => {
            tracing::warn!(key, "i18n key missing");
            key
        }
    }
}

/// Every table: the layout's ([`TABLE`]) and each page module's own `I18N` (an area adds its
/// keys in its module, so that page modules never edit one shared file).
pub(crate) const TABLES: &[&[(&str, &str, &str)]] = &[
    TABLE,
    super::operator::I18N,
    super::callbacks::I18N,
    super::board::I18N,
    super::recordings::I18N,
    super::admin::I18N,
    super::safety::I18N,
];

/// Every `(key, Spanish, English)` of every table.
pub(crate) fn all() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// The layout's texts: `(key, Spanish, English)`.
pub(crate) const TABLE: &[(&str, &str, &str)] = &[
    // The layout.
    (
        "app.name",
        "Línea contra la trata",
        "Anti-trafficking hotline",
    ),
    ("nav.operator", "Operador", "Operator"),
    ("nav.board", "Tablero", "Board"),
    ("nav.recordings", "Grabaciones", "Recordings"),
    ("nav.audit", "Auditoría", "Audit"),
    ("nav.users", "Usuarios", "Users"),
    ("nav.me", "Mi cuenta", "My account"),
    ("nav.signout", "Cerrar sesión", "Sign out"),
    ("nav.signin", "Iniciar sesión", "Sign in"),
    ("nav.lang", "Idioma", "Language"),
    ("nav.menu", "Menú", "Menu"),
    ("role.operator", "Operador(a)", "Operator"),
    ("role.supervisor", "Supervisor(a)", "Supervisor"),
    ("role.admin", "Administrador(a)", "Administrator"),
    // Sign-in.
    ("signin.title", "Iniciar sesión", "Sign in"),
    ("signin.user", "Usuario", "User name"),
    ("signin.password", "Contraseña", "Password"),
    ("signin.submit", "Entrar", "Sign in"),
    (
        "signin.wrong",
        "Usuario o contraseña incorrectos.",
        "Wrong user name or password.",
    ),
    (
        "signin.locked",
        "Demasiados intentos fallidos. Espere 10 minutos antes de volver a intentarlo.",
        "Too many failed attempts. Wait 10 minutes before trying again.",
    ),
    (
        "signin.busy",
        "Demasiados ingresos al mismo tiempo. Vuelva a intentarlo en unos segundos.",
        "Too many sign-ins at once. Try again in a few seconds.",
    ),
    (
        "signin.expired",
        "El formulario caducó. Vuelva a intentarlo.",
        "The form expired. Please try again.",
    ),
    (
        "signin.private",
        "Acceso solo para el personal autorizado. Cada acceso a una grabación queda registrado.",
        "Authorised staff only. Every access to a recording is logged.",
    ),
    // My account (the example page).
    ("me.title", "Mi cuenta", "My account"),
    ("me.user", "Usuario", "User name"),
    ("me.role", "Rol", "Role"),
    ("me.languages", "Idiomas de atención", "Languages served"),
    (
        "me.signout_hint",
        "Cierre la sesión al terminar, sobre todo en un equipo compartido.",
        "Sign out when you finish, above all on a shared computer.",
    ),
    // Errors.
    ("error.title", "Error", "Error"),
    ("error.home", "Volver al inicio", "Back to the start"),
    (
        "error.400",
        "La solicitud no es válida.",
        "The request is not valid.",
    ),
    (
        "error.403",
        "No tiene permiso para abrir esta página.",
        "You are not allowed to open this page.",
    ),
    ("error.404", "Página no encontrada.", "Page not found."),
    (
        "error.405",
        "Esta página no acepta ese método.",
        "This page does not accept that method.",
    ),
    (
        "error.csrf",
        "La solicitud no llevaba el código del formulario (CSRF). Vuelva a cargar la página e inténtelo de nuevo.",
        "The request did not carry the form's code (CSRF). Reload the page and try again.",
    ),
    (
        "error.audit",
        "No se pudo escribir el registro de auditoría: no se muestra la grabación.",
        "The audit log could not be written: the recording is not shown.",
    ),
    (
        "error.503",
        "Servicio no disponible por el momento. Inténtelo de nuevo en unos minutos.",
        "Service unavailable for now. Try again in a few minutes.",
    ),
    (
        "error.500",
        "Error interno. Quedó registrado.",
        "Internal error. It was logged.",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;

    #[test]
    fn lookup() {
        assert_eq!(t(Lang::Es, "signin.user"), "Usuario");
        assert_eq!(t(Lang::En, "signin.user"), "User name");
        assert_eq!(t(Lang::En, "no.such.key"), "no.such.key");
        assert_eq!(Lang::from_code("en"), Some(Lang::En));
        assert_eq!(Lang::from_code("fr"), None);
    }

    #[test]
    fn keys_are_unique_and_filled() {
        let mut seen = HashSet::new();
        for (k, es, en) in all() {
            assert!(seen.insert(*k), "key {k} twice");
            assert!(!es.is_empty() && !en.is_empty(), "{k}");
        }
    }

    /// Every `t("key")` in the templates and the page sources is in the table.
    #[test]
    fn every_key_used_is_in_the_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let keys: HashSet<&str> = all().map(|(k, _, _)| *k).collect();
        let mut files = Vec::new();
        for dir in ["templates", "src/pages"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                files.push(entry.unwrap().path());
            }
        }
        let mut used = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Not the documentation's examples.
            let code = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            // `t("…")`, `layout.t("…")`, and `user.layout("…")` (a title key) alike.
            for (i, _) in code.match_indices("t(\"") {
                let rest = &code[i + 3..];
                let key = &rest[..rest.find('"').unwrap()];
                // Only keys (`area.what`), not other calls that happen to end in `t("`.
                if key.contains('.') && !key.contains(' ') {
                    used += 1;
                    assert!(
                        keys.contains(key),
                        "{}: key {key:?} missing",
                        file.display()
                    );
                }
            }
        }
        assert!(used > 10, "the scan found only {used} keys");
    }
}
