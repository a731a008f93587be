//! Text from untrusted sources (file names, a node's errors, values in export comments) made
//! safe to show: control characters escaped, so they can neither drive a terminal nor break a
//! line.

use std::borrow::Cow;

/// `s` with every control character written as its Rust escape (`\u{1b}`, `\n`, …); borrowed
/// when there is none.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert_eq!(escape_controls("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        assert!(matches!(escape_controls("café ✓"), Cow::Borrowed("café ✓")));
    }
}
