//! `GET /api/recordings/{id}/audio`: the whole file, byte ranges (206, Content-Range, 416),
//! the audit line written before the body, and no audio when the audit log cannot be written.

#[macro_use]
mod common;

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;

use axum::body::{Body, HttpBody as _};
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, header};
use common::{Answer, Harness};
use hotline_store::{AuditEntry, AuditFilter};
use tower::ServiceExt;

fn uri(id: &str) -> String {
    format!("/api/recordings/{id}/audio")
}

async fn audit(h: &Harness) -> Vec<AuditEntry> {
    h.store.list_audit(&AuditFilter::default()).await.unwrap()
}

async fn ranged(h: &Harness, id: &str, range: &str, if_range: Option<&str>) -> Answer {
    let mut b = h
        .request(Method::GET, &uri(id), Some("sup"))
        .header(header::RANGE, range);
    if let Some(v) = if_range {
        b = b.header(header::IF_RANGE, v);
    }
    Harness::send_to(h.app(), b.body(Body::empty()).unwrap()).await
}

async fn whole_file_with_the_audit_line_written_first(h: Harness) {
    let id = &h.seed.rec_message;
    let wav = &h.seed.message_wav;
    let req = h
        .request(Method::GET, &uri(id), Some("sup"))
        .body(Body::empty())
        .unwrap();
    // Headers first; the body is not read yet.
    let res = h.app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let lines = audit(&h).await;
    assert_eq!(
        lines.len(),
        1,
        "the audit line exists before the first byte is read"
    );
    let line = &lines[0];
    assert_eq!(line.user.as_deref(), Some("sup"));
    assert_eq!(line.action, "recording.audio");
    assert_eq!(line.recording_id.as_deref(), Some(id.as_str()));
    assert_eq!(line.source.as_deref(), Some("unknown"));
    assert_eq!(line.detail, "full");
    let age = hotline_store::Timestamp::now().unix_millis() - line.at.unix_millis();
    assert!((0..60_000).contains(&age), "{age}");

    let headers = res.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(headers[header::CONTENT_LENGTH], wav.len().to_string());
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::ETAG], format!("\"{}\"", "0f".repeat(32)));
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        format!("inline; filename=\"{id}.wav\"")
    );
    assert!(headers.get(header::CONTENT_RANGE).is_none());
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(&body[..], &wav[..]);
    assert_eq!(&body[..4], b"RIFF");

    // An absolute path, outside the data dir.
    let a = h.get(&uri(&h.seed.rec_conversation), Some("admin")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len(), 44 + 8000);
    assert_eq!(audit(&h).await.len(), 2);
}

async fn byte_ranges(h: Harness) {
    let id = &h.seed.rec_message;
    let wav = &h.seed.message_wav;
    let len = wav.len();
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=44-", 44, len - 1),
        ("bytes=-500", len - 500, len - 1),
        ("bytes=150000-999999", 150_000, len - 1),
        ("bytes=-999999", 0, len - 1),
        ("bytes=65530-131080", 65_530, 131_080),
    ] {
        let a = ranged(&h, id, range, None).await;
        assert_eq!(a.status, 206, "{range}");
        assert_eq!(
            a.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{range}"
        );
        assert_eq!(
            a.header("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert_eq!(a.header("accept-ranges"), Some("bytes"));
        assert_eq!(a.header("content-type"), Some("audio/wav"));
        assert_eq!(&a.body[..], &wav[start..=end], "{range}");
    }

    for range in [
        format!("bytes={len}-"),
        format!("bytes={len}-{}", len + 10),
        "bytes=-0".into(),
    ] {
        let a = ranged(&h, id, &range, None).await;
        assert_eq!(a.error(416), "range not satisfiable", "{range}");
        assert_eq!(
            a.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
    }

    // Not understood: the whole file.
    for range in ["bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=x-"] {
        let a = ranged(&h, id, range, None).await;
        assert_eq!(a.status, 200, "{range}");
        assert_eq!(a.body.len(), len);
    }

    // If-Range: the ETag honours the range, anything else gets the whole file.
    let etag = format!("\"{}\"", "0f".repeat(32));
    let a = ranged(&h, id, "bytes=0-9", Some(&etag)).await;
    assert_eq!(a.status, 206);
    assert_eq!(a.body.len(), 10);
    let a = ranged(&h, id, "bytes=0-9", Some("\"other\"")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.len(), len);
    let a = ranged(&h, id, "bytes=0-9", Some("Sun, 01 Nov 2026 12:00:00 GMT")).await;
    assert_eq!(a.status, 200);

    // Every request is in the audit log, with the range asked for.
    let lines = audit(&h).await;
    assert_eq!(lines.len(), 7 + 3 + 4 + 3);
    assert!(lines.iter().all(|l| l.action == "recording.audio"));
    assert!(lines.iter().any(|l| l.detail == "bytes=-500"));
    assert!(lines.iter().any(|l| l.detail == "bytes=0-1,5-6"));
}

async fn head_sends_no_body_and_is_audited(h: Harness) {
    let req = h
        .request(Method::HEAD, &uri(&h.seed.rec_message), Some("admin"))
        .body(Body::empty())
        .unwrap();
    let a = Harness::send_to(h.app(), req).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("content-length"),
        Some(h.seed.message_wav.len().to_string().as_str())
    );
    assert!(a.body.is_empty());
    assert_eq!(audit(&h).await[0].detail, "HEAD full");
}

async fn the_client_address_is_audited(h: Harness) {
    let addr: SocketAddr = "198.51.100.7:53211".parse().unwrap();
    let app = h.app().layer(MockConnectInfo(addr));
    let req = h
        .request(Method::GET, &uri(&h.seed.rec_message), Some("sup"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(Harness::send_to(app, req).await.status, 200);
    assert_eq!(
        audit(&h).await[0].source.as_deref(),
        Some("198.51.100.7:53211")
    );
}

async fn no_audio_when_the_audit_log_cannot_be_written(h: Harness) {
    h.fail_audit_writes().await;
    for range in [None, Some("bytes=0-99")] {
        let mut b = h.request(Method::GET, &uri(&h.seed.rec_message), Some("sup"));
        if let Some(r) = range {
            b = b.header(header::RANGE, r);
        }
        let a = Harness::send_to(h.app(), b.body(Body::empty()).unwrap()).await;
        assert_eq!(
            a.error(503),
            "audit log unavailable: the recording is not served"
        );
        assert!(a.header("content-range").is_none());
        assert!(!a.body.windows(4).any(|w| w == b"RIFF"));
    }
    assert!(audit(&h).await.is_empty());
}

async fn missing_recordings_and_files(h: Harness) {
    let a = h.get(&uri("01JC00000000000000000000ZZ"), Some("sup")).await;
    assert_eq!(a.error(404), "no such recording");
    let a = h.get(&uri("not%20an%20id"), Some("sup")).await;
    assert_eq!(a.error(404), "no such recording");
    assert!(audit(&h).await.is_empty(), "unknown ids are not audited");

    // The row exists, the file does not: 404, and the attempt is audited.
    let a = h.get(&uri(&h.seed.rec_missing), Some("sup")).await;
    assert_eq!(a.error(404), "recording audio not found");
    let lines = audit(&h).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].recording_id.as_deref(),
        Some(h.seed.rec_missing.as_str())
    );
    // No path leaks.
    assert!(!String::from_utf8_lossy(&a.body).contains(".wav"));
}

async fn large_files_stream_in_chunks(h: Harness) {
    // 3 MiB: read in 64 KiB chunks, never whole.
    let id = &h.seed.rec_message;
    let path = h.data_dir.join(format!("recordings/2026/11/01/{id}.wav"));
    let big = common::wav((3 << 20) / 2);
    std::fs::write(&path, &big).unwrap();
    let req: Request<Body> = h
        .request(Method::GET, &uri(id), Some("sup"))
        .body(Body::empty())
        .unwrap();
    let res = h.app().oneshot(req).await.unwrap();
    let mut body = res.into_body();
    let mut frames = 0;
    let mut got = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let chunk = frame.unwrap().into_data().unwrap();
        assert!(chunk.len() <= 64 * 1024);
        got.extend_from_slice(&chunk);
        frames += 1;
    }
    assert_eq!(got.len(), big.len());
    assert!(got == big);
    assert!(frames >= big.len() / (64 * 1024), "{frames} frames");
}

both!(
    whole_file_with_the_audit_line_written_first,
    byte_ranges,
    head_sends_no_body_and_is_audited,
    the_client_address_is_audited,
    no_audio_when_the_audit_log_cannot_be_written,
    missing_recordings_and_files,
    large_files_stream_in_chunks,
);
