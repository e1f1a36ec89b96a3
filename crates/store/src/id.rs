//! Row and operation ids: ULIDs (26 characters of Crockford base32: 48 bits of milliseconds, 80
//! random bits). They sort by creation time as text, so a listing ordered by id is in time order,
//! and they are made without asking the database, which the writer needs: a call's id exists
//! before its row does.

use rand::RngCore;

use crate::time::Timestamp;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID for the current time.
pub fn new_id() -> String {
    new_id_at(Timestamp::now())
}

/// A new ULID for the given time (tests, replays).
pub fn new_id_at(at: Timestamp) -> String {
    let ms = u128::from(u64::try_from(at.unix_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF);
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let mut value = ms << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (72 - 8 * i);
    }
    (0..26)
        .map(|i| CROCKFORD[((value >> (125 - 5 * i)) & 0x1F) as usize] as char)
        .collect()
}

/// Whether `s` has the shape of an id made here (26 Crockford base32 characters).
pub fn is_id(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|c| CROCKFORD.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_well_formed_and_time_ordered() {
        let a = new_id_at(Timestamp::from_unix_millis(1_000));
        let b = new_id_at(Timestamp::from_unix_millis(1_001));
        assert!(is_id(&a) && is_id(&b));
        assert!(a < b);
        assert_ne!(new_id(), new_id());
        assert!(new_id_at(Timestamp::EPOCH).starts_with("0000000000"));
        // The maximum 48-bit time encodes as "7ZZZZZZZZZ".
        assert!(new_id_at(Timestamp::from_unix_millis(0xFFFF_FFFF_FFFF)).starts_with("7ZZZZZZZZZ"));
    }
}
