//! A [`Report`] as JUnit XML, the test-result format CI systems (GitLab, Jenkins, GitHub
//! actions' test reporters) read to show each case rather than one pass/fail step.

use std::fmt::Write;

use super::Report;

impl Report {
    /// The report as a JUnit XML document: one `testsuite` named `suite` (the plugin file), one
    /// `testcase` per case (`classname` is its case file), and a `failure` with the message for
    /// each failed case. Text from plugins (deny reasons, error messages) is escaped, and
    /// characters XML 1.0 cannot carry are replaced with U+FFFD, so the document always parses.
    pub fn junit(&self, suite: &str) -> String {
        let (tests, failures) = (self.outcomes.len(), self.failed());
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        // `write!` to a String cannot fail.
        let _ = writeln!(
            xml,
            "<testsuites tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
        );
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">",
            escape(suite)
        );
        for outcome in &self.outcomes {
            let _ = write!(
                xml,
                "    <testcase name=\"{}\" classname=\"{}\"",
                escape(&outcome.name),
                escape(&outcome.file.display().to_string())
            );
            match &outcome.failure {
                None => xml.push_str("/>\n"),
                Some(why) => {
                    let why = escape(why);
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{why}\" type=\"mismatch\">{why}</failure>\n    </testcase>"
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }
}

/// Escapes text for an XML attribute or element. Line breaks and tabs become character
/// references so attribute values keep them (a parser would otherwise normalize them to spaces).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
                out.push(c)
            }
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::CaseOutcome;

    #[test]
    fn junit_has_a_testcase_per_case_and_failures_with_messages() {
        let report = Report {
            outcomes: vec![
                CaseOutcome {
                    file: "cases.json".into(),
                    name: "latest is denied".into(),
                    failure: None,
                },
                CaseOutcome {
                    file: "cases.json".into(),
                    name: "<pinned> & \"ok\"".into(),
                    failure: Some(
                        "expected allow, got {\"verdict\":{\"deny\":\"a<b\\u0001\"}}\nnext".into(),
                    ),
                },
            ],
        };
        assert_eq!(
            report.junit("deny_latest.wasm"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <testsuites tests=\"2\" failures=\"1\" errors=\"0\">\n  \
             <testsuite name=\"deny_latest.wasm\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\">\n    \
             <testcase name=\"latest is denied\" classname=\"cases.json\"/>\n    \
             <testcase name=\"&lt;pinned&gt; &amp; &quot;ok&quot;\" classname=\"cases.json\">\n      \
             <failure message=\"expected allow, got {&quot;verdict&quot;:{&quot;deny&quot;:&quot;a&lt;b\\u0001&quot;}}&#10;next\" type=\"mismatch\">\
             expected allow, got {&quot;verdict&quot;:{&quot;deny&quot;:&quot;a&lt;b\\u0001&quot;}}&#10;next</failure>\n    \
             </testcase>\n  \
             </testsuite>\n\
             </testsuites>\n"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_replaced() {
        assert_eq!(escape("a\u{1}b\u{FFFE}c'"), "a\u{FFFD}b\u{FFFD}c&apos;");
        assert_eq!(escape("tab\there"), "tab&#9;here");
    }
}
