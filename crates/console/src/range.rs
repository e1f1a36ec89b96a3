//! The `Range` request header (RFC 9110 §14), for one byte range.
//!
//! Supported: `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header this does not understand (another
//! unit, bad syntax, `b < a`, several ranges) is ignored and the whole file is served, as
//! §14.2 allows; a well-formed range that starts past the end is unsatisfiable (416).

/// What to send of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// All of it (200).
    Full,
    /// Bytes `start..=end` (206, `Content-Range: bytes start-end/len`).
    Part { start: u64, end: u64 },
    /// Nothing (416, `Content-Range: bytes */len`).
    Unsatisfiable,
}

impl Selection {
    /// The selection a `Range` header value asks of a file of `len` bytes.
    pub(crate) fn of(header: Option<&str>, len: u64) -> Selection {
        let Some(spec) = header.and_then(single_byte_range) else {
            return Selection::Full;
        };
        match spec {
            Spec::From(start) | Spec::Between(start, _) if start >= len => Selection::Unsatisfiable,
            Spec::From(start) => Selection::Part {
                start,
                end: len - 1,
            },
            Spec::Between(start, last) => Selection::Part {
                start,
                end: last.min(len - 1),
            },
            Spec::Suffix(n) if n == 0 || len == 0 => Selection::Unsatisfiable,
            Spec::Suffix(n) => Selection::Part {
                start: len - n.min(len),
                end: len - 1,
            },
        }
    }
}

/// One range-spec, before the file's length is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `a-b`
    Between(u64, u64),
    /// `a-`
    From(u64),
    /// `-n`
    Suffix(u64),
}

fn single_byte_range(header: &str) -> Option<Spec> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    match (number(first), number(last)) {
        (Some(a), Some(b)) if a <= b => Some(Spec::Between(a, b)),
        (Some(a), None) if last.is_empty() => Some(Spec::From(a)),
        (None, Some(n)) if first.is_empty() => Some(Spec::Suffix(n)),
        _ => None,
    }
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(h: &str, len: u64) -> Selection {
        Selection::of(Some(h), len)
    }

    fn part(start: u64, end: u64) -> Selection {
        Selection::Part { start, end }
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(Selection::of(None, 10), Selection::Full);
        assert_eq!(sel("bytes=0-0", 10), part(0, 0));
        assert_eq!(sel("bytes=2-5", 10), part(2, 5));
        assert_eq!(sel("bytes=2-50", 10), part(2, 9));
        assert_eq!(sel("bytes=4-", 10), part(4, 9));
        assert_eq!(sel("bytes=-3", 10), part(7, 9));
        assert_eq!(sel("bytes=-30", 10), part(0, 9));
        assert_eq!(sel("Bytes = 1-2", 10), part(1, 2));
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(sel("bytes=10-", 10), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=10-20", 10), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=-0", 10), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=0-", 0), Selection::Unsatisfiable);
        assert_eq!(sel("bytes=-5", 0), Selection::Unsatisfiable);
    }

    #[test]
    fn ignored() {
        for h in [
            "items=0-1",
            "bytes=5-2",
            "bytes=0-1,4-5",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes 0-1",
            "bytes=99999999999999999999999-",
            "",
        ] {
            assert_eq!(sel(h, 10), Selection::Full, "{h:?}");
        }
    }
}
