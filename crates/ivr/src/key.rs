//! Phone keys (DTMF): `0`–`9`, `*`, `#`, `A`–`D`.

/// `c` as a phone key, upper case, if it is one.
pub(crate) fn dtmf(c: char) -> Option<char> {
    let c = c.to_ascii_uppercase();
    (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')).then_some(c)
}

/// A string that is exactly one phone key (lower case `a`–`d` accepted).
pub(crate) fn phone_key(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => dtmf(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keys() {
        assert_eq!(phone_key("#"), Some('#'));
        assert_eq!(phone_key("d"), Some('D'));
        assert_eq!(phone_key("10"), None);
        assert_eq!(phone_key("x"), None);
        assert_eq!(phone_key(""), None);
        assert_eq!(dtmf('e'), None);
    }
}
