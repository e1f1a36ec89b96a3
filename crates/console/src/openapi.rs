//! `GET /api/openapi.json`: the API described in OpenAPI 3.1, written by hand (serde_json's
//! `json!`; no generator crate). A test checks that its paths and methods are exactly the
//! router's ([`crate::routes`]).

use std::sync::OnceLock;

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Identity;
use crate::error::ApiError;
use crate::{BODY_LIMIT, Route};

pub(crate) fn routes() -> Vec<Route> {
    vec![Route::get("/api/openapi.json", openapi)]
}

async fn openapi(who: Identity) -> Result<Response, ApiError> {
    who.require(Identity::ANYONE)?;
    Ok(Json(document()).into_response())
}

/// The document (built once).
pub(crate) fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hotline",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of the hotline (CONTRACT.md, \"HTTP API\"). Everything \
                under /api needs a bearer token (`hotline token create NAME`) or a console \
                session. Roles: operators see calls (without recording ids) and the queue, and \
                set their own status; supervisors and admins also see recordings, their audio \
                and the audit log. Every audio request is written to the audit log before any \
                byte is sent. Timestamps are RFC 3339 UTC. Errors are {\"error\": \"...\"}. \
                Answers are never cached (Cache-Control: no-store)."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": healthz(),
            "/metrics": metrics(),
            "/api/openapi.json": openapi_path(),
            "/api/calls": calls(),
            "/api/calls/{id}": call(),
            "/api/recordings": recordings(),
            "/api/recordings/{id}": recording(),
            "/api/recordings/{id}/audio": audio(),
            "/api/queue": queue(),
            "/api/operators/{name}/status": operator_status(),
            "/api/audit": audit(),
            "/api/callbacks": callbacks(),
            "/api/callbacks/{id}/cancel": callback_cancel(),
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token; only its SHA-256 is stored. A disabled \
                        user's tokens are refused."
                }
            },
            "schemas": schemas(),
            "responses": responses(),
            "parameters": {
                "limit": {
                    "name": "limit", "in": "query", "required": false,
                    "description": "Most rows to return (default 50).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": hotline_store::MAX_LIMIT}
                }
            }
        }
    })
}

fn err(codes: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            (*code).to_owned(),
            json!({"$ref": format!("#/components/responses/{code}")}),
        );
    }
    Value::Object(map)
}

fn with_errors(ok: Value, codes: &[&str]) -> Value {
    let mut responses = err(codes);
    if let (Value::Object(all), Value::Object(ok)) = (&mut responses, ok) {
        all.extend(ok);
    }
    responses
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn healthz() -> Value {
    json!({"get": {
        "summary": "Health of SIP, database and storage, and whether new calls are taken (admission)",
        "security": [],
        "responses": {
            "200": {"description": "All usable", "content": json_content(schema_ref("Health"))},
            "503": {"description": "Something is not usable", "content": json_content(schema_ref("Health"))}
        }
    }})
}

fn metrics() -> Value {
    json!({"get": {
        "summary": "Prometheus metrics",
        "security": [],
        "responses": {
            "200": {"description": "Text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}
        }
    }})
}

fn openapi_path() -> Value {
    json!({"get": {
        "summary": "This document",
        "responses": with_errors(
            json!({"200": {"description": "OpenAPI 3.1", "content": json_content(json!({"type": "object"}))}}),
            &["401"],
        )
    }})
}

fn calls() -> Value {
    json!({"get": {
        "summary": "Calls, newest first",
        "description": "Every role. Operators get no `recordings` key.",
        "parameters": [
            {"$ref": "#/components/parameters/limit"},
            {"name": "sip_call_id", "in": "query", "required": false,
             "description": "The SIP Call-ID, to match SIP traces.", "schema": {"type": "string"}},
            {"name": "reference", "in": "query", "required": false,
             "description": "The number read to the caller.", "schema": {"type": "string", "pattern": "^[0-9]+$"}}
        ],
        "responses": with_errors(json!({"200": {
            "description": "Calls",
            "content": json_content(json!({
                "type": "object", "required": ["calls"],
                "properties": {"calls": {"type": "array", "items": schema_ref("Call")}}
            }))
        }}), &["400", "401", "403", "503"])
    }})
}

fn call() -> Value {
    json!({"get": {
        "summary": "One call with its events",
        "description": "Every role. Operators get no `recordings` key.",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with_errors(json!({"200": {
            "description": "The call", "content": json_content(schema_ref("CallDetail"))
        }}), &["401", "403", "404", "503"])
    }})
}

fn recordings() -> Value {
    json!({"get": {
        "summary": "Recordings, newest first",
        "description": "Supervisors and admins.",
        "parameters": [
            {"$ref": "#/components/parameters/limit"},
            {"name": "status", "in": "query", "required": false, "schema": schema_ref("RecordingStatus")},
            {"name": "kind", "in": "query", "required": false, "schema": schema_ref("RecordingKind")},
            {"name": "language", "in": "query", "required": false,
             "description": "The call's language.", "schema": {"type": "string", "examples": ["es", "qu"]}},
            {"name": "call_id", "in": "query", "required": false, "schema": {"type": "string"}},
            {"name": "since", "in": "query", "required": false,
             "description": "created_at >= since", "schema": {"type": "string", "format": "date-time"}},
            {"name": "until", "in": "query", "required": false,
             "description": "created_at < until", "schema": {"type": "string", "format": "date-time"}}
        ],
        "responses": with_errors(json!({"200": {
            "description": "Recordings",
            "content": json_content(json!({
                "type": "object", "required": ["recordings"],
                "properties": {"recordings": {"type": "array", "items": schema_ref("Recording")}}
            }))
        }}), &["400", "401", "403", "503"])
    }})
}

fn recording() -> Value {
    json!({"patch": {
        "summary": "Review a recording",
        "description": "Supervisors and admins. Any of status, tags (replace the list; at most \
            20, 1 to 40 characters each, trimmed, duplicates dropped), notes (at most 10 000 \
            characters). The change and its audit line are stored together.",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": json_content(schema_ref("RecordingPatch"))},
        "responses": with_errors(json!({"200": {
            "description": "The recording after the change", "content": json_content(schema_ref("Recording"))
        }}), &["400", "401", "403", "404", "413", "415", "503"])
    }})
}

fn audio() -> Value {
    json!({"get": {
        "summary": "A recording's audio",
        "description": "Supervisors and admins. RIFF WAV, PCM 16-bit, 8 kHz. One byte range \
            (`bytes=a-b`, `bytes=a-`, `bytes=-n`); other Range values are ignored. `If-Range` \
            with the ETag (the SHA-256) is honoured. Every request is written to the audit log \
            before any byte is sent; if it cannot be, 503 and no audio.",
        "parameters": [
            {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
            {"name": "Range", "in": "header", "required": false, "schema": {"type": "string"}},
            {"name": "If-Range", "in": "header", "required": false, "schema": {"type": "string"}}
        ],
        "responses": with_errors(json!({
            "200": {"description": "The whole file",
                    "headers": {"Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}},
                                "ETag": {"schema": {"type": "string"}}},
                    "content": {"audio/wav": {"schema": {"type": "string", "contentMediaType": "audio/wav"}}}},
            "206": {"description": "One byte range",
                    "headers": {"Content-Range": {"schema": {"type": "string"}},
                                "Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}}},
                    "content": {"audio/wav": {"schema": {"type": "string", "contentMediaType": "audio/wav"}}}},
            "416": {"description": "The range starts past the end; Content-Range: bytes */LEN",
                    "headers": {"Content-Range": {"schema": {"type": "string"}}},
                    "content": json_content(schema_ref("Error"))}
        }), &["401", "403", "404", "503"])
    }})
}

fn queue() -> Value {
    json!({"get": {
        "summary": "The operator queue",
        "description": "Every role. While no queue runs: nobody waiting, every enabled operator \
            account offline.",
        "responses": with_errors(json!({"200": {
            "description": "The queue now", "content": json_content(schema_ref("Queue"))
        }}), &["401", "403", "503"])
    }})
}

fn operator_status() -> Value {
    json!({"put": {
        "summary": "Set an operator's availability",
        "description": "Operators set their own; supervisors and admins anyone's. 404 if \
            `name` is not an enabled operator; 503 `operator queue not running` while no queue \
            runs.",
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": json_content(json!({
            "type": "object", "required": ["status"], "additionalProperties": false,
            "properties": {"status": schema_ref("OperatorStatus")}
        }))},
        "responses": with_errors(json!({"200": {
            "description": "Set",
            "content": json_content(json!({
                "type": "object", "required": ["name", "status"],
                "properties": {"name": {"type": "string"}, "status": schema_ref("OperatorStatus")}
            }))
        }}), &["400", "401", "403", "404", "413", "415", "503"])
    }})
}

fn callback_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "call_id", "reference", "window", "state", "attempts", "created_at", "next_at", "expires_at"],
        "properties": {
            "id": {"type": "string"},
            "call_id": {"type": "string", "description": "The original call's id."},
            "reference": {"type": "string", "description": "The original call's reference."},
            "language": {"type": ["string", "null"]},
            "window": {"type": "string", "description": "`asap` or a configured window."},
            "state": {"type": "string", "enum": ["pending", "placing", "done", "given-up", "expired", "cancelled"]},
            "attempts": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "next_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"}
        }
    })
}

fn callbacks() -> Value {
    json!({"get": {
        "summary": "Callbacks not ended yet, soonest first",
        "description": "Every role. Never the caller's number.",
        "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
        "responses": with_errors(json!({"200": {
            "description": "The callbacks",
            "content": json_content(json!({
                "type": "object", "required": ["callbacks"],
                "properties": {"callbacks": {"type": "array", "items": callback_schema()}}
            }))
        }}), &["400", "401", "403", "503"])
    }})
}

fn callback_cancel() -> Value {
    json!({"post": {
        "summary": "Cancel a callback",
        "description": "Supervisors and admins; audited first. The callback ends (its number \
            is deleted) and the original call gets a `callback-cancelled` event. 409 if it \
            has already ended.",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": with_errors(json!({"200": {
            "description": "Cancelled",
            "content": json_content(callback_schema())
        }}), &["401", "403", "404", "409", "503"])
    }})
}

fn audit() -> Value {
    json!({"get": {
        "summary": "The audit log, newest first",
        "description": "Supervisors and admins.",
        "parameters": [
            {"$ref": "#/components/parameters/limit"},
            {"name": "user", "in": "query", "required": false, "schema": {"type": "string"}},
            {"name": "recording_id", "in": "query", "required": false, "schema": {"type": "string"}}
        ],
        "responses": with_errors(json!({"200": {
            "description": "Audit lines",
            "content": json_content(json!({
                "type": "object", "required": ["audit"],
                "properties": {"audit": {"type": "array", "items": schema_ref("AuditEntry")}}
            }))
        }}), &["400", "401", "403", "503"])
    }})
}

fn nullable(ty: &str) -> Value {
    json!({"type": [ty, "null"]})
}

fn timestamp(nullable: bool) -> Value {
    if nullable {
        json!({"type": ["string", "null"], "format": "date-time"})
    } else {
        json!({"type": "string", "format": "date-time"})
    }
}

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}}
        },
        "Health": {
            "type": "object", "required": ["status", "checks"],
            "properties": {
                "status": {"enum": ["ok", "unavailable"]},
                "checks": {"type": "array", "items": {
                    "type": "object", "required": ["name", "ok"],
                    "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"}}
                }}
            }
        },
        "Disposition": {"enum": ["message", "operator", "abandoned", "rejected", "failed", "interrupted"]},
        "Language": {"type": ["string", "null"], "description": "es or qu; null before a choice",
                     "examples": ["es", "qu"]},
        "Call": call_schema(),
        "CallDetail": {
            "allOf": [schema_ref("Call"), {
                "type": "object", "required": ["events"],
                "properties": {"events": {"type": "array", "items": schema_ref("CallEvent")}}
            }]
        },
        "Answer": {
            "type": "object", "required": ["question", "answer"],
            "properties": {"question": {"type": "string", "examples": ["En peligro ahora"]},
                           "answer": {"type": "string", "examples": ["sí"]}}
        },
        "CallEvent": {
            "type": "object", "required": ["at", "kind", "detail"],
            "properties": {"at": timestamp(false), "kind": {"type": "string"}, "detail": {"type": "string"}}
        },
        "RecordingKind": {"enum": ["message", "conversation"]},
        "RecordingStatus": {"enum": ["new", "reviewed", "referred", "closed"]},
        "Recording": recording_schema(),
        "RecordingPatch": {
            "type": "object", "additionalProperties": false, "minProperties": 1,
            "properties": {
                "status": schema_ref("RecordingStatus"),
                "tags": {"type": "array", "maxItems": 20,
                         "items": {"type": "string", "minLength": 1, "maxLength": 40}},
                "notes": {"type": "string", "maxLength": 10_000}
            }
        },
        "OperatorStatus": {"enum": ["available", "paused", "offline"]},
        "Queue": {
            "type": "object", "required": ["waiting", "operators"],
            "properties": {
                "waiting": {"type": "array", "items": {
                    "type": "object", "required": ["call_id", "language", "since"],
                    "properties": {"call_id": {"type": "string"},
                                   "language": schema_ref("Language"),
                                   "since": timestamp(false)}
                }},
                "operators": {"type": "array", "items": {
                    "type": "object", "required": ["name", "status", "registered", "current_call"],
                    "properties": {"name": {"type": "string"},
                                   "status": schema_ref("OperatorStatus"),
                                   "registered": {"type": "boolean"},
                                   "current_call": nullable("string"),
                                   "state": {"type": "string", "enum": ["available", "paused",
                                             "offline", "ringing", "busy", "wrap-up"]},
                                   "paused_reason": {"type": "string"}}
                }}
            }
        },
        "AuditEntry": {
            "type": "object",
            "required": ["id", "at", "user", "action", "recording_id", "source", "detail"],
            "properties": {
                "id": {"type": "string"},
                "at": timestamp(false),
                "user": nullable("string"),
                "action": {"type": "string", "examples": ["recording.audio", "recording.update"]},
                "recording_id": nullable("string"),
                "source": {"type": ["string", "null"], "description": "ip:port, or unknown"},
                "detail": {"type": "string"}
            }
        }
    })
}

fn call_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "sip_call_id", "reference", "started_at", "answered_at", "ended_at",
                     "language", "disposition", "path", "queue_wait_ms", "operator", "marks",
                     "answers"],
        "properties": {
            "id": {"type": "string"},
            "sip_call_id": {"type": "string"},
            "reference": {"type": "string"},
            "started_at": timestamp(false),
            "answered_at": timestamp(true),
            "ended_at": timestamp(true),
            "language": schema_ref("Language"),
            "disposition": {"oneOf": [schema_ref("Disposition"), {"type": "null"}]},
            "path": {"type": "array", "items": {"type": "string"},
                     "description": "The menu nodes visited, in order."},
            "queue_wait_ms": nullable("integer"),
            "operator": nullable("string"),
            "marks": {"type": "array", "items": {"type": "string", "examples": ["quick-exit", "silent"]},
                      "description": "What the call is marked with: quick-exit (the caller pressed the quick-exit key and heard the decoy), silent (no key and no speech the whole call)."},
            "answers": {"type": "array", "items": schema_ref("Answer"),
                        "description": "The caller's keypad answers, in order (written while the call is still in the menus)."},
            "recordings": {"type": "array", "items": {"type": "string"},
                           "description": "Recording ids, oldest first; absent for operators."}
        }
    })
}

fn recording_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "call_id", "kind", "created_at", "duration_ms", "sha256", "status",
                     "tags", "notes", "language"],
        "properties": {
            "id": {"type": "string"},
            "call_id": {"type": "string"},
            "kind": schema_ref("RecordingKind"),
            "created_at": timestamp(false),
            "duration_ms": {"type": "integer"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "status": schema_ref("RecordingStatus"),
            "tags": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "string"},
            "language": schema_ref("Language")
        }
    })
}

fn responses() -> Value {
    let error = |description: &str| json!({"description": description, "content": json_content(schema_ref("Error"))});
    json!({
        "400": error("A parameter or body the API does not accept"),
        "401": error("No credentials, or unknown, revoked or disabled ones (WWW-Authenticate: Bearer)"),
        "403": error("The role does not allow this"),
        "404": error("No such resource"),
        "409": error("Conflicts with a stored value"),
        "413": error(&format!("Body over {BODY_LIMIT} bytes")),
        "415": error("Body not application/json"),
        "503": error("Database, storage, audit log or operator queue unavailable")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route of the router is in the document, and every operation of the document is a
    /// route of the router.
    #[test]
    fn document_and_router_agree() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = crate::routes()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p.to_owned()))
            .collect();
        assert_eq!(documented, served);
    }

    /// Every `$ref` points at something defined.
    #[test]
    fn references_resolve() {
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').unwrap();
                        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        walk(document(), document());
    }
}
