//! The writer's spool: `<data_dir>/spool/store.jsonl`, one JSON [`Envelope`] per line, appended
//! and fsynced per batch while the database is away, replayed in order when it is back, then
//! truncated. Ops the database refuses for good go to `rejected.jsonl` beside it (kept, never
//! dropped). The directory is 0700 and the files 0600: they hold call data.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ops::Envelope;
use crate::privacy::sync_dir;
use crate::time::Timestamp;

/// File name of the spool in the spool directory.
pub const SPOOL_FILE: &str = "store.jsonl";
/// File name of the refused ops in the spool directory.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// First read size when replaying; doubled while one line does not fit.
const READ_CHUNK: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
    /// Offset of the first op not yet replayed.
    cursor: u64,
    /// Ops between `cursor` and `len`.
    pending: u64,
}

/// Ops read back from the spool, with the file offset just past each. A chunk holds either ops
/// or a run of unreadable lines (only possible if the file was edited by hand), never both.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) ops: Vec<Envelope>,
    pub(crate) ends: Vec<u64>,
    pub(crate) unreadable: Vec<String>,
    pub(crate) unreadable_end: u64,
}

#[derive(Serialize)]
struct RejectedLine<'a> {
    rejected_at: Timestamp,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope: Option<&'a Envelope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
}

impl Spool {
    /// Opens (creating) the spool in `dir`. A torn last line (a crash during an append that was
    /// never acknowledged) is cut off and kept in the rejected file.
    pub(crate) fn open(dir: &Path) -> io::Result<Spool> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = dir.join(SPOOL_FILE);
        let created = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        if created {
            sync_dir(dir)?;
        }
        let mut spool = Spool {
            dir: dir.to_owned(),
            file,
            len: 0,
            cursor: 0,
            pending: 0,
        };
        spool.len = spool.file.metadata()?.len();
        spool.recover()?;
        Ok(spool)
    }

    fn recover(&mut self) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        // Count lines, and find the end of the last whole one.
        let mut offset = 0u64;
        let mut last_newline_end = 0u64;
        let mut lines = 0u64;
        let mut buf = vec![0u8; READ_CHUNK];
        while offset < self.len {
            let n = self.file.read_at(&mut buf, offset)?;
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                if *b == b'\n' {
                    lines += 1;
                    last_newline_end = offset + i as u64 + 1;
                }
            }
            offset += n as u64;
        }
        if last_newline_end < self.len {
            let torn_len = usize::try_from(self.len - last_newline_end).unwrap_or(usize::MAX);
            let mut torn = vec![0u8; torn_len.min(1 << 24)];
            let n = self.file.read_at(&mut torn, last_newline_end)?;
            let raw = String::from_utf8_lossy(&torn[..n]).into_owned();
            self.write_rejected(&[RejectedLine {
                rejected_at: Timestamp::now(),
                error: "torn line at the end of the spool (crash during an append)",
                envelope: None,
                raw: Some(&raw),
            }])?;
            self.file.set_len(last_newline_end)?;
            self.file.sync_all()?;
            self.len = last_newline_end;
            tracing::warn!(
                "cut a torn line off the end of the store spool; kept it in {REJECTED_FILE}"
            );
        }
        self.pending = lines;
        Ok(())
    }

    /// Ops waiting to be replayed.
    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Appends ops (one line each) and fsyncs.
    pub(crate) fn append(&mut self, ops: &[Envelope]) -> io::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(ops.len() * 256);
        for op in ops {
            serde_json::to_writer(&mut buf, op).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
        {
            // Leave no partial line behind for the next append to run into.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.pending += ops.len() as u64;
        Ok(())
    }

    /// Reads up to `max` ops from the cursor (does not move it).
    pub(crate) fn read(&self, max: usize) -> io::Result<Chunk> {
        let mut chunk = Chunk::default();
        let mut offset = self.cursor;
        let mut size = READ_CHUNK;
        while chunk.ops.len() + chunk.unreadable.len() < max && offset < self.len {
            let want = usize::try_from(self.len - offset)
                .unwrap_or(usize::MAX)
                .min(size);
            let mut buf = vec![0u8; want];
            let mut got = 0;
            while got < want {
                let n = self.file.read_at(&mut buf[got..], offset + got as u64)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf.truncate(got);
            let mut consumed = 0usize;
            while chunk.ops.len() + chunk.unreadable.len() < max {
                let Some(nl) = buf[consumed..].iter().position(|b| *b == b'\n') else {
                    break;
                };
                let line = &buf[consumed..consumed + nl];
                consumed += nl + 1;
                let end = offset + consumed as u64;
                match serde_json::from_slice::<Envelope>(line) {
                    Ok(op) if chunk.unreadable.is_empty() => {
                        chunk.ops.push(op);
                        chunk.ends.push(end);
                    }
                    Err(_) if chunk.ops.is_empty() => {
                        chunk
                            .unreadable
                            .push(String::from_utf8_lossy(line).into_owned());
                        chunk.unreadable_end = end;
                    }
                    // A change of kind ends the chunk; the line is read again next time.
                    _ => return Ok(chunk),
                }
            }
            if consumed == 0 {
                if got < want || want as u64 == self.len - offset {
                    // No newline up to the end of the file: cannot happen after recover().
                    return Err(io::Error::other("spool line without an end"));
                }
                size = size.saturating_mul(2);
                continue;
            }
            offset += consumed as u64;
        }
        Ok(chunk)
    }

    /// Marks everything before `offset` as replayed (`ops` of them); truncates the file once
    /// everything is.
    pub(crate) fn advance(&mut self, offset: u64, ops: u64) -> io::Result<()> {
        debug_assert!(offset >= self.cursor && offset <= self.len);
        self.cursor = offset;
        self.pending = self.pending.saturating_sub(ops);
        if self.cursor == self.len {
            self.file.set_len(0)?;
            self.file.sync_all()?;
            self.len = 0;
            self.cursor = 0;
            self.pending = 0;
        }
        Ok(())
    }

    /// Keeps refused ops in `rejected.jsonl` (fsynced).
    pub(crate) fn reject(&self, rejected: &[(&Envelope, String)]) -> io::Result<()> {
        let now = Timestamp::now();
        let lines: Vec<RejectedLine<'_>> = rejected
            .iter()
            .map(|(env, error)| RejectedLine {
                rejected_at: now,
                error,
                envelope: Some(env),
                raw: None,
            })
            .collect();
        self.write_rejected(&lines)
    }

    /// Keeps spool lines that did not parse in `rejected.jsonl` (fsynced).
    pub(crate) fn reject_raw(&self, raw: &[String]) -> io::Result<()> {
        let now = Timestamp::now();
        let lines: Vec<RejectedLine<'_>> = raw
            .iter()
            .map(|r| RejectedLine {
                rejected_at: now,
                error: "spool line is not an op",
                envelope: None,
                raw: Some(r),
            })
            .collect();
        self.write_rejected(&lines)
    }

    fn write_rejected(&self, lines: &[RejectedLine<'_>]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(REJECTED_FILE);
        let created = !path.exists();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        let mut buf = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut buf, line).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        f.write_all(&buf)?;
        f.sync_data()?;
        if created {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}
