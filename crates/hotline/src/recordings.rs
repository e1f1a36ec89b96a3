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

/// Repairs every `.part` under the recordings root (a crash or `kill -9`
/// mid-message): each is kept, made playable and reported.
pub(crate) fn repair_on_start(data_dir: &Path) -> usize {
    let results = hotline_media::recorder::scan_and_repair(&root(data_dir));
    let mut repaired = 0;
    for r in results {
        match r {
            Ok(done) => {
                repaired += 1;
                tracing::warn!(path = %done.path.display(), duration_ms = done.duration_ms, sha256 = %done.sha256_hex, "recording left by an interrupted call repaired and kept");
            }
            Err(e) => {
                tracing::error!(error = %e, "a partial recording could not be repaired; kept as is")
            }
        }
    }
    repaired
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
