//! The console's test harness: a real store (SQLite in a temp dir, or a fresh PostgreSQL
//! schema dropped at the end), seeded with users, tokens, calls and recordings whose WAV files
//! are on disk; the router driven with `oneshot`, no server.
//!
//! `both!(case, ...)` runs each `async fn case(h: Harness)` of the including file once per
//! backend (`sqlite::case`, `postgres::case`).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use hotline_console::{AppState, Check, HealthProbe, MetricsSource};
use hotline_store::{
    CallStore, CallUpdate, Caller, ConnectOptions, Disposition, NewApiToken, NewCall, NewCallEvent,
    NewRecording, NewUser, PgSettings, RecordingKind, RecordingStatus, Role, Timestamp, TokenHash,
    UserUpdate, new_id_at,
};
use serde_json::Value;
use sqlx::Connection as _;
use tower::ServiceExt;

/// Runs each case against SQLite and PostgreSQL.
macro_rules! both {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(crate::common::Harness::sqlite().await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(crate::common::Harness::postgres().await).await;
                }
            )+
        }
    };
}

/// 2026-11-01T12:34:56Z
pub const T0: i64 = 1_793_536_496_000;

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(T0 + offset_ms)
}

/// Users: name, role, disabled.
pub const USERS: &[(&str, Role, bool)] = &[
    ("admin", Role::Admin, false),
    ("sup", Role::Supervisor, false),
    ("ana", Role::Operator, false),
    ("beto", Role::Operator, false),
    ("dora", Role::Operator, true),
    ("old_admin", Role::Admin, true),
];

/// What the seed put in the store.
#[derive(Debug, Clone)]
pub struct Seed {
    /// A message in Spanish: ended, with events and one recording (`rec_message`).
    pub call_message: String,
    /// An operator call in Quechua with a conversation recording (`rec_conversation`) and one
    /// whose file is missing (`rec_missing`).
    pub call_operator: String,
    /// An abandoned call before the language choice: no language, no recordings.
    pub call_abandoned: String,
    /// Stored with a path relative to the data dir; 200 000 bytes.
    pub rec_message: String,
    /// Stored with an absolute path; status `reviewed`.
    pub rec_conversation: String,
    pub rec_missing: String,
    /// The bytes of `rec_message`'s file.
    pub message_wav: Vec<u8>,
}

enum Db {
    Sqlite { url: String },
    Postgres(PgSchema),
}

/// One test's world.
pub struct Harness {
    pub store: Arc<dyn CallStore>,
    pub data_dir: PathBuf,
    pub tokens: HashMap<&'static str, String>,
    pub seed: Seed,
    health: Arc<Fixed>,
    db: Db,
    _tmp: tempfile::TempDir,
}

impl Harness {
    pub async fn sqlite() -> Harness {
        let tmp = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", tmp.path().join("hotline.db").display());
        let store = hotline_store::connect(&url).await.expect("sqlite store");
        store.migrate().await.expect("migrate sqlite");
        Harness::seeded(store, tmp, Db::Sqlite { url }).await
    }

    pub async fn postgres() -> Harness {
        let tmp = tempfile::tempdir().expect("temp dir");
        let schema = PgSchema::create().await;
        let options = ConnectOptions {
            postgres: PgSettings {
                schema: Some(schema.name.clone()),
                ..PgSettings::default()
            },
            ..ConnectOptions::default()
        };
        let store = hotline_store::connect_with(&schema.url, &options)
            .await
            .expect("pg store");
        store.migrate().await.expect("migrate postgres");
        Harness::seeded(store, tmp, Db::Postgres(schema)).await
    }

    async fn seeded(store: Arc<dyn CallStore>, tmp: tempfile::TempDir, db: Db) -> Harness {
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let tokens = seed_users(&*store).await;
        let seed = seed_calls(&*store, &data_dir, tmp.path()).await;
        Harness {
            store,
            data_dir,
            tokens,
            seed,
            health: Arc::new(Fixed::default()),
            db,
            _tmp: tmp,
        }
    }

    pub fn state(&self) -> AppState {
        AppState::new(
            self.health.clone(),
            self.health.clone(),
            self.store.clone(),
            &self.data_dir,
        )
    }

    /// The router without a queue.
    pub fn app(&self) -> Router {
        hotline_console::router(self.state())
    }

    /// Sends `req` to `app`.
    pub async fn send_to(app: Router, req: Request<Body>) -> Answer {
        let res = app.oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request as `who` (a user name; `None`: no credentials).
    pub fn request(&self, method: Method, uri: &str, who: Option<&str>) -> request::Builder {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(who) = who {
            b = b.header(header::AUTHORIZATION, format!("Bearer {}", self.token(who)));
        }
        b
    }

    pub fn token(&self, who: &str) -> &str {
        self.tokens
            .get(who)
            .unwrap_or_else(|| panic!("no token for {who}"))
    }

    pub async fn get(&self, uri: &str, who: Option<&str>) -> Answer {
        let req = self
            .request(Method::GET, uri, who)
            .body(Body::empty())
            .unwrap();
        Harness::send_to(self.app(), req).await
    }

    /// A JSON body with `Content-Type: application/json`.
    pub async fn send_json(
        &self,
        method: Method,
        uri: &str,
        who: Option<&str>,
        body: &Value,
    ) -> Answer {
        let req = self
            .request(method, uri, who)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        Harness::send_to(self.app(), req).await
    }

    /// What the health probe reports from now on.
    pub fn set_healthy(&self, ok: bool) {
        self.health
            .down
            .store(!ok, std::sync::atomic::Ordering::SeqCst);
    }

    /// From now on every audit write fails (a trigger refuses the insert).
    pub async fn fail_audit_writes(&self) {
        match &self.db {
            Db::Sqlite { url } => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query(
                    "CREATE TRIGGER audit_refused BEFORE INSERT ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END",
                )
                .execute(&mut conn)
                .await
                .unwrap();
                conn.close().await.unwrap();
            }
            Db::Postgres(schema) => {
                let mut conn = sqlx::PgConnection::connect(&schema.url).await.unwrap();
                let s = &schema.name;
                for sql in [
                    format!(
                        "CREATE FUNCTION {s}.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                         $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$"
                    ),
                    format!(
                        "CREATE TRIGGER audit_refused BEFORE INSERT ON {s}.audit_log \
                         FOR EACH ROW EXECUTE FUNCTION {s}.refuse_audit()"
                    ),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
                conn.close().await.unwrap();
            }
        }
    }
}

pub use axum::http::request;

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status and the `{"error": "..."}` shape; returns the message.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/json",
            "errors are JSON"
        );
        let v = self.json();
        let obj = v.as_object().expect("an object");
        assert_eq!(obj.len(), 1, "only `error`: {v}");
        obj["error"].as_str().expect("a string").to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// The object's keys, sorted.
pub fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[derive(Default)]
struct Fixed {
    down: std::sync::atomic::AtomicBool,
}

impl HealthProbe for Fixed {
    fn checks(&self) -> Vec<Check> {
        vec![Check {
            name: "sip",
            ok: !self.down.load(std::sync::atomic::Ordering::SeqCst),
        }]
    }
}

impl MetricsSource for Fixed {
    fn render(&self) -> String {
        "hotline_calls_total 1\n".into()
    }
}

async fn seed_users(store: &dyn CallStore) -> HashMap<&'static str, String> {
    let mut tokens = HashMap::new();
    for &(name, role, disabled) in USERS {
        store
            .create_user(&NewUser {
                name: name.to_owned(),
                role,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                sip_ha1_md5: None,
                sip_ha1_sha256: None,
                languages: vec!["es".into(), "qu".into()],
                created_at: at(-86_400_000),
            })
            .await
            .unwrap();
        let (token, hash) = TokenHash::generate();
        store
            .create_api_token(&NewApiToken {
                hash,
                user: name.to_owned(),
                label: "test".into(),
                created_at: at(-86_400_000),
            })
            .await
            .unwrap();
        if disabled {
            store
                .update_user(
                    name,
                    &UserUpdate {
                        disabled: Some(true),
                        ..UserUpdate::default()
                    },
                )
                .await
                .unwrap();
        }
        tokens.insert(name, token);
    }
    tokens
}

/// A RIFF WAV, PCM 16-bit mono 8 kHz, with `samples` samples of a pattern.
pub fn wav(samples: usize) -> Vec<u8> {
    let data_len = (samples * 2) as u32;
    let mut v = Vec::with_capacity(44 + samples * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        v.extend_from_slice(&((i as i16).wrapping_mul(37)).to_le_bytes());
    }
    v
}

async fn call(
    store: &dyn CallStore,
    started: Timestamp,
    sip_call_id: &str,
    update: CallUpdate,
    events: &[(&str, &str)],
) -> String {
    let id = new_id_at(started);
    store
        .insert_call(&NewCall {
            id: id.clone(),
            sip_call_id: sip_call_id.to_owned(),
            reference: None,
            started_at: started,
            trunk_source: Some("192.0.2.10:5060".into()),
            called_number: Some("1818".into()),
            caller: Caller::Pseudonym("ab".repeat(32)),
            node: None,
        })
        .await
        .unwrap();
    store.update_call(&id, &update).await.unwrap();
    for (i, (kind, detail)) in events.iter().enumerate() {
        store
            .add_call_event(&NewCallEvent {
                id: new_id_at(started),
                call_id: id.clone(),
                at: started.add_millis(1000 * i as i64),
                kind: (*kind).to_owned(),
                detail: (*detail).to_owned(),
            })
            .await
            .unwrap();
    }
    id
}

async fn recording(
    store: &dyn CallStore,
    id: &str,
    call_id: &str,
    kind: RecordingKind,
    path: &str,
    created: Timestamp,
    status: RecordingStatus,
) {
    store
        .insert_recording(&NewRecording {
            id: id.to_owned(),
            call_id: call_id.to_owned(),
            kind,
            path: path.to_owned(),
            created_at: created,
            duration_ms: 12_340,
            bytes: 200_000,
            sha256: "0f".repeat(32),
            status,
            tags: vec![],
            notes: String::new(),
        })
        .await
        .unwrap();
}

async fn seed_calls(store: &dyn CallStore, data_dir: &Path, elsewhere: &Path) -> Seed {
    let call_message = call(
        store,
        at(0),
        "a84b4c76e66710@pc33.example.com",
        CallUpdate {
            answered_at: Some(at(100)),
            ended_at: Some(at(45_000)),
            language: Some("es".into()),
            path: Some(vec!["language".into(), "main".into(), "message".into()]),
            disposition: Some(Disposition::Message),
            ..CallUpdate::default()
        },
        &[("answered", ""), ("digit", "1"), ("recording", "started")],
    )
    .await;
    let call_operator = call(
        store,
        at(60_000),
        "3848276298220188511@atlanta.example.com",
        CallUpdate {
            answered_at: Some(at(60_100)),
            ended_at: Some(at(300_000)),
            language: Some("qu".into()),
            path: Some(vec!["language".into(), "main".into(), "operator".into()]),
            disposition: Some(Disposition::Operator),
            queue_wait_ms: Some(12_000),
            operator: Some("ana".into()),
            ..CallUpdate::default()
        },
        &[("answered", ""), ("enqueued", ""), ("bridged", "ana")],
    )
    .await;
    let call_abandoned = call(
        store,
        at(120_000),
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@192.0.2.4",
        CallUpdate {
            answered_at: Some(at(120_100)),
            ended_at: Some(at(125_000)),
            disposition: Some(Disposition::Abandoned),
            path: Some(vec!["language".into()]),
            ..CallUpdate::default()
        },
        &[("answered", "")],
    )
    .await;

    // A hex id like the binary makes, a relative path, a file of 200 000 bytes.
    let rec_message = format!("{:032x}", 0x0123_4567_89ab_cdef_u128 << 40);
    let message_wav = wav((200_000 - 44) / 2);
    let rel = format!("recordings/2026/11/01/{rec_message}.wav");
    let file = data_dir.join(&rel);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, &message_wav).unwrap();
    recording(
        store,
        &rec_message,
        &call_message,
        RecordingKind::Message,
        &rel,
        at(45_000),
        RecordingStatus::New,
    )
    .await;

    // A ULID, an absolute path outside the data dir.
    let rec_conversation = new_id_at(at(300_000));
    let abs = elsewhere
        .join("shared")
        .join(format!("{rec_conversation}.wav"));
    std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
    std::fs::write(&abs, wav(4000)).unwrap();
    recording(
        store,
        &rec_conversation,
        &call_operator,
        RecordingKind::Conversation,
        abs.to_str().unwrap(),
        at(300_000),
        RecordingStatus::Reviewed,
    )
    .await;

    let rec_missing = new_id_at(at(300_001));
    recording(
        store,
        &rec_missing,
        &call_operator,
        RecordingKind::Conversation,
        &format!("recordings/2026/11/01/{rec_missing}.wav"),
        at(300_001),
        RecordingStatus::New,
    )
    .await;

    Seed {
        call_message,
        call_operator,
        call_abandoned,
        rec_message,
        rec_conversation,
        rec_missing,
        message_wav,
    }
}

/// The PostgreSQL the tests use: `HOTLINE_TEST_PG_URL`, else the local server CI provides.
pub fn pg_url() -> String {
    std::env::var("HOTLINE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema made for one test and dropped when this is dropped (as in the store's tests).
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let url = pg_url();
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url}: {e}\n\
                 The console's tests run against PostgreSQL as well as SQLite. Start it (CI has \
                 it at 127.0.0.1:5432, trust auth, database `test`) or point HOTLINE_TEST_PG_URL \
                 at one."
            )
        });
        let id = hotline_store::new_id().to_ascii_lowercase();
        let name = format!(
            "console_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            &id[16..]
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        let _ = conn.close().await;
        PgSchema { url, name }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime (and while panicking): use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A clock the test sets (ms since the epoch); starts at [`T0`].
#[derive(Debug)]
pub struct TestClock(std::sync::atomic::AtomicI64);

impl TestClock {
    pub fn new() -> Arc<TestClock> {
        Arc::new(TestClock(std::sync::atomic::AtomicI64::new(T0)))
    }

    /// Moves the clock on by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl hotline_console::Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// The password [`Harness::set_passwords`] gives every user: `<name>-password`.
pub fn password(user: &str) -> String {
    format!("{user}-password")
}

impl Harness {
    /// Gives every seeded user the password [`password`]`(name)`, hashed with cheap argon2
    /// parameters (the tests run unoptimised).
    pub async fn set_passwords(&self) {
        use argon2::PasswordHasher as _;
        let argon = argon2::Argon2::from(argon2::Params::new(8, 1, 1, None).unwrap());
        for &(name, _, _) in USERS {
            let hash = argon
                .hash_password(password(name).as_bytes())
                .unwrap()
                .to_string();
            self.store
                .update_user(
                    name,
                    &UserUpdate {
                        password_hash: Some(hash),
                        ..UserUpdate::default()
                    },
                )
                .await
                .unwrap();
        }
    }

    /// The router with session settings and a clock of the test's.
    pub fn console(
        &self,
        settings: hotline_console::ConsoleSettings,
        clock: Arc<TestClock>,
    ) -> Router {
        hotline_console::router(
            self.state()
                .with_console_settings(settings)
                .with_clock(clock),
        )
    }
}

/// A browser for the console pages: keeps cookies (as `Set-Cookie` says) and sends them; reads
/// the CSRF token from the pages' `<meta name="csrf-token">`.
pub struct Browser {
    pub app: Router,
    pub cookies: std::collections::BTreeMap<String, String>,
    /// `ip:port` the requests come from (`MockConnectInfo`); `None`: unknown.
    pub from: Option<std::net::SocketAddr>,
    /// An `X-Forwarded-For` header sent with every request (as a reverse proxy would).
    pub forwarded_for: Option<String>,
}

impl Browser {
    pub fn new(app: Router) -> Browser {
        Browser {
            app,
            cookies: Default::default(),
            from: None,
            forwarded_for: None,
        }
    }

    /// A request with this browser's cookies.
    pub fn request(&self, method: Method, uri: &str) -> request::Builder {
        let mut b = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            b = b.header(header::COOKIE, jar.join("; "));
        }
        if let Some(xff) = &self.forwarded_for {
            b = b.header("x-forwarded-for", xff);
        }
        b
    }

    /// Sends `req`, keeps the cookies the answer sets.
    pub async fn send(&mut self, req: Request<Body>) -> Answer {
        let app = match self.from {
            Some(addr) => self
                .app
                .clone()
                .layer(axum::extract::connect_info::MockConnectInfo(addr)),
            None => self.app.clone(),
        };
        let a = Harness::send_to(app, req).await;
        for v in a.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        a
    }

    pub async fn get(&mut self, uri: &str) -> Answer {
        let req = self.request(Method::GET, uri).body(Body::empty()).unwrap();
        self.send(req).await
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Answer {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect();
        let req = self
            .request(Method::POST, uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .unwrap();
        self.send(req).await
    }

    /// Opens the sign-in page and submits it (with `next` if given).
    pub async fn sign_in(&mut self, user: &str, password: &str, next: Option<&str>) -> Answer {
        let page = self.get("/signin").await;
        assert_eq!(page.status, 200, "{}", page.text());
        let token = hidden_field(&page.text(), "csrf").expect("the form's token");
        let mut fields = vec![("user", user), ("password", password), ("csrf", &token)];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        self.post_form("/signin", &fields).await
    }

    /// Signs in as `user` with its [`password`]; asserts it worked.
    pub async fn sign_in_as(&mut self, user: &str) {
        let a = self.sign_in(user, &password(user), None).await;
        assert_eq!(a.status, 303, "{}", a.text());
        assert!(self.cookies.contains_key("hotline_session"));
    }

    /// The session's CSRF token, read from a page.
    pub async fn csrf(&mut self) -> String {
        let a = self.get("/me").await;
        assert_eq!(a.status, 200, "{}", a.text());
        meta(&a.text(), "csrf-token").expect("csrf meta")
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value of `<input type="hidden" name="NAME" value="…">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let pattern = format!("name=\"{name}\" value=\"");
    let rest = &html[html.find(&pattern)? + pattern.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The content of `<meta name="NAME" content="…">` in a page.
pub fn meta(html: &str, name: &str) -> Option<String> {
    let pattern = format!("<meta name=\"{name}\" content=\"");
    let rest = &html[html.find(&pattern)? + pattern.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Answer {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
}

/// The calls of [`Harness::seed_safety`]: the seed's caller (same pseudonym) calls four more
/// times after the seed's calls.
#[derive(Debug, Clone)]
pub struct SafetySeed {
    /// Two silent calls (no key, no speech), abandoned.
    pub silent: [String; 2],
    /// A call that ended with the quick-exit key.
    pub quick_exit: String,
    /// The latest: in Spanish, taken by ana, with the four keypad answers of
    /// [`SAFETY_ANSWERS`] and no marks (yet).
    pub call: String,
}

/// The keypad answers of [`SafetySeed::call`], in order.
pub const SAFETY_ANSWERS: &[(&str, &str)] = &[
    ("En peligro ahora", "sí"),
    ("Sobre quién", "otra persona"),
    ("Menor de edad", "sí"),
    ("Región", "Madre de Dios"),
];

impl Harness {
    /// Adds the calls of [`SafetySeed`] (at T0 + 150 s … T0 + 200 s), for the pages that show
    /// marks, keypad answers and earlier silent or quick-exit calls.
    pub async fn seed_safety(&self) -> SafetySeed {
        let store = &*self.store;
        let marked = |secs: i64, sip: &'static str, mark: &'static str| async move {
            call(
                store,
                at(secs * 1000),
                sip,
                CallUpdate {
                    answered_at: Some(at(secs * 1000 + 100)),
                    ended_at: Some(at(secs * 1000 + 9_000)),
                    disposition: Some(Disposition::Abandoned),
                    path: Some(vec!["language".into()]),
                    marks: Some(vec![mark.to_owned()]),
                    ..CallUpdate::default()
                },
                &[("answered", "")],
            )
            .await
        };
        let silent = [
            marked(150, "silent-1@192.0.2.4", "silent").await,
            marked(160, "silent-2@192.0.2.4", "silent").await,
        ];
        let quick_exit = marked(170, "quick-exit@192.0.2.4", "quick-exit").await;
        let call = call(
            store,
            at(200_000),
            "keypad@192.0.2.4",
            CallUpdate {
                answered_at: Some(at(200_100)),
                language: Some("es".into()),
                path: Some(
                    [
                        "welcome",
                        "main-menu",
                        "cannot-talk",
                        "ask-danger",
                        "ask-who",
                        "ask-child",
                        "ask-region",
                        "operator",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                queue_wait_ms: Some(4_000),
                operator: Some("ana".into()),
                answers: Some(
                    SAFETY_ANSWERS
                        .iter()
                        .map(|(q, a)| hotline_store::Answer {
                            question: (*q).into(),
                            answer: (*a).into(),
                        })
                        .collect(),
                ),
                ..CallUpdate::default()
            },
            &[
                ("answered", ""),
                ("answer", "En peligro ahora = sí"),
                ("enqueued", ""),
                ("bridged", "ana"),
            ],
        )
        .await;
        SafetySeed {
            silent,
            quick_exit,
            call,
        }
    }

    /// Marks a call (replaces its marks), as the binary does at its end.
    pub async fn mark_call(&self, id: &str, marks: &[&str]) {
        self.store
            .update_call(
                id,
                &CallUpdate {
                    marks: Some(marks.iter().map(|m| (*m).to_owned()).collect()),
                    ..CallUpdate::default()
                },
            )
            .await
            .unwrap();
    }
}
