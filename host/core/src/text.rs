//! Plugin-supplied text (deny reasons, error messages, log lines) made safe to pass on.
//!
//! A plugin controls these strings, so they are bounded before they reach the CRI caller, the
//! audit log or a text log: cut at a character boundary with a visible mark, and with control
//! characters escaped so a plugin cannot forge log lines or terminal sequences. A 5 MiB deny
//! reason once made bulkhead unable to encode its answer, and containerd then started the
//! container without it.

/// Most bytes of a plugin's text that reach the CRI caller (a refusal's message).
pub const MAX_CRI_TEXT: usize = 1024;
/// Most bytes of a plugin's text kept in audit records and the daemon's log.
pub const MAX_RECORD_TEXT: usize = 4096;

/// `text` with control characters escaped (`\n` becomes `\\n`, others `\u{..}`) and cut to at
/// most about `max` bytes, ending in `… [cut N bytes]` when something was dropped.
pub fn bounded(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 32);
    for (at, ch) in text.char_indices() {
        let start = out.len();
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
        if out.len() > max {
            out.truncate(start);
            out.push_str(&format!("… [cut {} bytes]", text.len() - at));
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_plain_text_is_unchanged() {
        assert_eq!(bounded("image is revoked", 64), "image is revoked");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            bounded("a\nfake log line\u{1b}[31m", 64),
            "a\\nfake log line\\u{1b}[31m"
        );
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_marked() {
        let long = "é".repeat(3000);
        let cut = bounded(&long, MAX_CRI_TEXT);
        assert!(cut.len() <= MAX_CRI_TEXT + 32, "{}", cut.len());
        assert!(cut.ends_with("bytes]"), "{cut}");
        assert!(cut.contains("… [cut "), "{cut}");
        let megabytes = "x".repeat(5 << 20);
        assert!(bounded(&megabytes, MAX_RECORD_TEXT).len() < MAX_RECORD_TEXT + 32);
    }
}
