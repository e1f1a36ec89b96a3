//! Where recordings live (`<data_dir>/recordings/YYYY/MM/DD/<id>.wav`) and the
//! start-up repair of `.part` files a crash left behind.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The recordings root.
pub(crate) fn root(data_dir: &Path) -> PathBuf {
    data_dir.join("recordings")
}

/// `<data_dir>/recordings/YYYY/MM/DD` for the UTC day of `at`.
pub(crate) fn day_dir(data_dir: &Path, at: SystemTime) -> PathBuf {
    let days = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    root(data_dir)
        .join(format!("{y:04}"))
        .join(format!("{m:02}"))
        .join(format!("{d:02}"))
}

/// A new recording id: 128 random bits in hex (unguessable, so a leaked path
/// does not lead to other recordings).
pub(crate) fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The sidecar written next to a recording when it starts: which call it
/// belongs to, so a recording repaired after a crash still reaches the store.
fn sidecar(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.call"))
}

/// Writes `<id>.call` (the call's row id) beside the recording being started.
pub(crate) fn write_sidecar(dir: &Path, id: &str, call_row: &str) -> std::io::Result<()> {
    let path = sidecar(dir, id);
    let mut f = std::fs::File::create(&path)?;
    std::io::Write::write_all(&mut f, format!("call_id={call_row}\n").as_bytes())?;
    f.sync_data()
}

/// Removes the sidecar once the recording's row is submitted to the store.
pub(crate) fn remove_sidecar(wav: &Path) {
    if let (Some(dir), Some(id)) = (wav.parent(), recording_id(wav)) {
        let _ = std::fs::remove_file(sidecar(dir, &id));
    }
}

/// `<id>` of `<id>.wav` / `<id>.wav.part`.
fn recording_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name
        .strip_suffix(".wav.part")
        .or_else(|| name.strip_suffix(".wav"))?;
    Some(id.to_owned())
}

fn read_sidecar(dir: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(sidecar(dir, id)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("call_id="))
        .map(str::to_owned)
}

/// Repairs every `.part` under the recordings root (a crash or `kill -9`
/// mid-message): each is kept, made playable, reported, and entered in the
/// store with the call it belongs to (from its sidecar), tagged `repaired`.
/// A finished `.wav` whose sidecar is still there (a crash between finishing and
/// submitting its row) is entered too; the insert is idempotent.
pub(crate) fn repair_on_start(data_dir: &Path, writer: &hotline_store::WriterHandle) -> usize {
    let root = root(data_dir);
    let mut repaired = 0;
    for r in hotline_media::recorder::scan_and_repair(&root) {
        match r {
            Ok(done) => {
                repaired += 1;
                tracing::warn!(path = %done.path.display(), duration_ms = done.duration_ms, sha256 = %done.sha256_hex, "recording left by an interrupted call repaired and kept");
                submit(
                    data_dir,
                    writer,
                    &done.path,
                    done.duration_ms,
                    done.bytes,
                    &done.sha256_hex,
                    true,
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "a partial recording could not be repaired; kept as is")
            }
        }
    }
    for wav in leftover_sidecars(&root) {
        let Ok(bytes) = std::fs::read(&wav) else {
            continue;
        };
        let duration_ms = (bytes.len().saturating_sub(44) as u64 / 2) * 1000 / 8000;
        let sha = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes));
        let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
        submit(
            data_dir,
            writer,
            &wav,
            duration_ms,
            bytes.len() as u64,
            &hex,
            false,
        );
    }
    repaired
}

/// A conversation with an operator is recorded in two channels (caller, operator); a
/// message in one. Read from the WAV header's channel count.
fn kind_of(wav: &Path) -> hotline_store::RecordingKind {
    use std::io::Read as _;
    let mut head = [0u8; 24];
    let channels = std::fs::File::open(wav)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|()| u16::from_le_bytes([head[22], head[23]]));
    match channels {
        Ok(2) => hotline_store::RecordingKind::Conversation,
        _ => hotline_store::RecordingKind::Message,
    }
}

fn submit(
    data_dir: &Path,
    writer: &hotline_store::WriterHandle,
    wav: &Path,
    duration_ms: u64,
    bytes: u64,
    sha: &str,
    repaired: bool,
) {
    let (Some(dir), Some(id)) = (wav.parent(), recording_id(wav)) else {
        return;
    };
    let Some(call_id) = read_sidecar(dir, &id) else {
        tracing::warn!(path = %wav.display(), "recording without its call sidecar: kept on disk, not in the store");
        return;
    };
    let path = wav.strip_prefix(data_dir).unwrap_or(wav);
    writer.insert_recording(hotline_store::NewRecording {
        id,
        call_id,
        kind: kind_of(wav),
        path: path.to_string_lossy().into_owned(),
        created_at: hotline_store::Timestamp::now(),
        duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
        bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        sha256: sha.to_owned(),
        status: hotline_store::RecordingStatus::New,
        tags: if repaired {
            vec!["repaired".into()]
        } else {
            Vec::new()
        },
        notes: String::new(),
    });
    remove_sidecar(wav);
}

/// `.wav` files whose `.call` sidecar is still present.
fn leftover_sidecars(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "call") {
                let wav = p.with_extension("wav");
                if wav.is_file() {
                    out.push(wav);
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let p = day_dir(
            Path::new("/d"),
            UNIX_EPOCH + std::time::Duration::from_secs(1_795_910_400),
        );
        assert_eq!(p, Path::new("/d/recordings/2026/11/29"));
    }
}
