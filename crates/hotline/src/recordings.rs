//! Recordings on disk: ids, the `.call` sidecar that ties a recording to its call, and the
//! repair of what an interrupted run left behind (`.part` files, finished files whose row
//! was never submitted) — at start for the node's own directory, and for a dead cluster node's
//! directory by the survivor that adopts it (`adoption.rs`). Where the directories are:
//! `layout.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hotline_media::recorder::Finished;

use crate::layout::Layout;

/// A new recording id: 128 random bits in hex (unguessable, so a leaked path
/// does not lead to other recordings).
pub(crate) fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
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

/// What an interrupted run left in a recordings directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Leftovers {
    /// `.wav.part` files: recordings cut by a crash, to repair.
    pub(crate) parts: Vec<PathBuf>,
    /// Finished `.wav` files whose `.call` sidecar is still there (a crash between finishing
    /// and submitting the row).
    pub(crate) finished: Vec<PathBuf>,
    /// Files of either kind written within the quiet time: perhaps still being written, so
    /// left alone.
    pub(crate) fresh: Vec<PathBuf>,
}

impl Leftovers {
    /// Nothing to repair or enter.
    pub(crate) fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.finished.is_empty()
    }
}

/// Lists the leftovers under `dir` (recursively). A file modified less than `quiet` before
/// `now` goes to [`Leftovers::fresh`] instead (`Duration::ZERO`: none is fresh).
pub(crate) fn leftovers(dir: &Path, quiet: Duration, now: SystemTime) -> Leftovers {
    let is_fresh = |p: &Path| {
        !quiet.is_zero()
            && std::fs::metadata(p)
                .and_then(|m| m.modified())
                // A file "modified in the future" (clocks of the file server and this node
                // apart) counts as fresh: better late than a file still being written.
                .map(|t| now.duration_since(t).map_or(true, |age| age < quiet))
                .unwrap_or(false)
    };
    let mut out = Leftovers::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            let name = e.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                stack.push(p);
            } else if !kind.is_file() {
                continue;
            } else if name.ends_with(hotline_media::recorder::PART_SUFFIX) {
                if is_fresh(&p) {
                    out.fresh.push(p);
                } else {
                    out.parts.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "call") {
                let wav = p.with_extension("wav");
                if wav.is_file() {
                    if is_fresh(&wav) {
                        out.fresh.push(wav);
                    } else {
                        out.finished.push(wav);
                    }
                }
            }
        }
    }
    out.parts.sort();
    out.finished.sort();
    out.fresh.sort();
    out
}

/// Who enters a repaired recording: its own node, or a survivor adopting a dead node's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// The node that recorded it (or the one-process hotline).
    Own,
    /// Node `by` adopts the recordings of the dead node `dead`.
    Adopted { by: &'a str, dead: &'a str },
}

/// What a repair did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repaired {
    /// `.part` files repaired and kept.
    pub(crate) repaired: usize,
    /// Recordings submitted to the store (repaired ones and finished ones with a sidecar).
    pub(crate) entered: usize,
    /// Files that could not be repaired or read (kept as they are, logged).
    pub(crate) failed: usize,
}

/// Repairs the `.part` files of `found` that are still there (another repair may have taken
/// some in the meantime), hashes them, and enters them and `found`'s finished files in the
/// store with the call each belongs to (its sidecar): tagged `repaired` (and `adopted`, with
/// a `recording-adopted` call event, for an adoption). The stored path is relative to the
/// layout's root. The caller makes sure no other repair of `dir` runs at once.
pub(crate) fn repair_leftovers(
    layout: &Layout,
    dir: &Path,
    found: &Leftovers,
    writer: &hotline_store::WriterHandle,
    owner: Owner<'_>,
) -> Repaired {
    let mut done = Repaired::default();
    // When each `.part` was last written, read before the repair touches it: about when its
    // call was cut (the call's end, when its row is closed as interrupted).
    let last_write: std::collections::HashMap<PathBuf, SystemTime> = found
        .parts
        .iter()
        .filter_map(|p| Some((p.clone(), std::fs::metadata(p).ok()?.modified().ok()?)))
        .collect();
    let wanted = |p: &Path| found.parts.iter().any(|q| q == p);
    for r in hotline_media::recorder::scan_and_repair_with(dir, wanted) {
        match r {
            Ok(f) => {
                done.repaired += 1;
                match owner {
                    Owner::Own => {
                        tracing::warn!(path = %f.path.display(), duration_ms = f.duration_ms, sha256 = %f.sha256_hex, "recording left by an interrupted call repaired and kept")
                    }
                    Owner::Adopted { dead, .. } => {
                        tracing::warn!(node = dead, path = %f.path.display(), duration_ms = f.duration_ms, sha256 = %f.sha256_hex, "recording left by a dead node repaired, kept and adopted")
                    }
                }
                let cut_at = last_write
                    .get(&f.path.with_extension("wav.part"))
                    .map(|t| timestamp_of(*t));
                if submit(layout, writer, &f, Some(cut_at), owner) {
                    done.entered += 1;
                }
            }
            Err(e) => {
                done.failed += 1;
                tracing::error!(error = %e, "a partial recording could not be repaired; kept as is");
            }
        }
    }
    for wav in &found.finished {
        let Some(dir) = wav.parent() else { continue };
        let Some(id) = recording_id(wav) else {
            continue;
        };
        if !sidecar(dir, &id).exists() {
            // Entered by another repair since it was found.
            continue;
        }
        let bytes = match std::fs::read(wav) {
            Ok(b) => b,
            Err(e) => {
                done.failed += 1;
                tracing::error!(path = %wav.display(), error = %e, "a finished recording could not be read; not entered");
                continue;
            }
        };
        let duration_ms = (bytes.len().saturating_sub(44) as u64 / 2) * 1000 / 8000;
        let sha = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes));
        let f = Finished {
            path: wav.clone(),
            duration_ms,
            bytes: bytes.len() as u64,
            sha256_hex: sha.iter().map(|b| format!("{b:02x}")).collect(),
        };
        if submit(layout, writer, &f, None, owner) {
            done.entered += 1;
        }
    }
    done
}

/// Repairs every `.part` under the node's own recordings (a crash or `kill -9` mid-message;
/// the whole `recordings/` tree for the one-process hotline): each is kept, made playable,
/// reported, and entered in the store with the call it belongs to (from its sidecar), tagged
/// `repaired`. A finished `.wav` whose sidecar is still there (a crash between finishing and
/// submitting its row) is entered too; the insert is idempotent. Returns the `.part` files
/// repaired.
pub(crate) fn repair_on_start(layout: &Layout, writer: &hotline_store::WriterHandle) -> usize {
    let dir = layout.own_recordings();
    let found = leftovers(&dir, Duration::ZERO, SystemTime::now());
    repair_leftovers(layout, &dir, &found, writer, Owner::Own).repaired
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

/// A file time as a store timestamp.
fn timestamp_of(t: SystemTime) -> hotline_store::Timestamp {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    hotline_store::Timestamp::from_unix_millis(ms)
}

/// Enters a recording found on disk with its sidecar's call; whether it was submitted.
/// `repaired`: it was a `.part` cut by a crash, last written at the time given (if known),
/// which a `recording-repaired` event of the call records.
fn submit(
    layout: &Layout,
    writer: &hotline_store::WriterHandle,
    found: &Finished,
    repaired: Option<Option<hotline_store::Timestamp>>,
    owner: Owner<'_>,
) -> bool {
    let Finished {
        path: wav,
        duration_ms,
        bytes,
        sha256_hex: sha,
    } = found;
    let (wav, duration_ms, bytes) = (wav.as_path(), *duration_ms, *bytes);
    let (Some(dir), Some(id)) = (wav.parent(), recording_id(wav)) else {
        return false;
    };
    let Some(call_id) = read_sidecar(dir, &id) else {
        tracing::warn!(path = %wav.display(), "recording without its call sidecar: kept on disk, not in the store");
        return false;
    };
    let path = wav.strip_prefix(layout.root()).unwrap_or(wav);
    let mut tags = Vec::new();
    if let Some(cut_at) = repaired {
        tags.push("repaired".to_owned());
        writer.add_call_event(
            &call_id,
            cut_at.unwrap_or_else(hotline_store::Timestamp::now),
            "recording-repaired",
            &format!("recording {id} ({duration_ms} ms) cut by an interruption, repaired and kept"),
        );
    }
    if let Owner::Adopted { by, dead } = owner {
        tags.push("adopted".to_owned());
        writer.add_call_event(
            &call_id,
            hotline_store::Timestamp::now(),
            "recording-adopted",
            &format!("recording {id} ({duration_ms} ms) of node {dead} adopted by node {by}"),
        );
    }
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
        tags,
        notes: String::new(),
    });
    remove_sidecar(wav);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `<dir>/<id>.wav.part` (a few bytes) and its sidecar.
    fn part(dir: &Path, id: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        let p = dir.join(format!("{id}.wav.part"));
        std::fs::write(&p, b"RIFF").expect("write part");
        write_sidecar(dir, id, "call-1").expect("sidecar");
        p
    }

    #[test]
    fn a_node_finds_only_its_own_leftovers() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = Layout::new(root.path(), "a");
        let b = Layout::new(root.path(), "b");
        let day = |l: &Layout| l.day_dir(SystemTime::now());
        let pa = part(&day(&a), "aaaa");
        let pb = part(&day(&b), "bbbb");
        let finished_b = day(&b).join("cccc.wav");
        std::fs::write(&finished_b, b"RIFF").expect("wav");
        write_sidecar(&day(&b), "cccc", "call-2").expect("sidecar");

        let later = SystemTime::now() + Duration::from_secs(60);
        let found_a = leftovers(&a.own_recordings(), Duration::ZERO, later);
        assert_eq!(found_a.parts, vec![pa.clone()]);
        assert!(found_a.finished.is_empty() && found_a.fresh.is_empty());
        let found_b = leftovers(&b.own_recordings(), Duration::ZERO, later);
        assert_eq!(found_b.parts, vec![pb.clone()]);
        assert_eq!(found_b.finished, vec![finished_b]);
        // What a survivor sees of b is b's directory, not a's.
        let of_b = leftovers(
            &a.recordings_of("b").expect("node id"),
            Duration::ZERO,
            later,
        );
        assert_eq!(of_b, found_b);
        assert!(pa.exists() && pb.exists(), "listing touches nothing");
    }

    #[test]
    fn files_written_within_the_quiet_time_are_left_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let b = Layout::new(root.path(), "b");
        let p = part(&b.day_dir(SystemTime::now()), "bbbb");
        let lease = Duration::from_secs(3);
        // Just written: perhaps a live node's recording in progress.
        let now = leftovers(&b.own_recordings(), lease, SystemTime::now());
        assert!(now.parts.is_empty(), "{now:?}");
        assert_eq!(now.fresh, vec![p.clone()]);
        // Untouched for longer than the lease: left by a dead run.
        let later = leftovers(
            &b.own_recordings(),
            lease,
            SystemTime::now() + Duration::from_secs(10),
        );
        assert_eq!(later.parts, vec![p]);
        assert!(later.fresh.is_empty());
    }

    #[test]
    fn the_one_process_hotline_repairs_the_whole_recordings_tree() {
        let root = tempfile::tempdir().expect("tempdir");
        let single = Layout::new(root.path(), "");
        let p = part(&single.day_dir(SystemTime::now()), "dddd");
        assert!(p.starts_with(root.path().join("recordings")));
        let found = leftovers(&single.own_recordings(), Duration::ZERO, SystemTime::now());
        assert_eq!(found.parts, vec![p]);
    }
}
