//! Whether a command's output is what a page shows under it. A shown line matches an output
//! line equal to it, where `[ID]` stands for a job's id (a UUID), `[..]` for any text within
//! the line (a time, a count), and a shown line `...` alone for any number of lines (none
//! included).
//! Trailing blank lines are ignored on both sides; trailing spaces of each line too.

use regex::Regex;

/// The placeholders a shown line may hold, and the text each stands for.
const PLACEHOLDERS: [(&str, &str); 2] = [
    ("[..]", ".*"),
    (
        "[ID]",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ),
];

/// One shown line, ready to match.
enum Pattern {
    /// `...`: any lines.
    Any,
    Line(Regex),
}

fn pattern(shown: &str) -> Pattern {
    if shown.trim() == "..." {
        return Pattern::Any;
    }
    let mut re = String::from("^");
    let mut rest = shown.trim_end();
    while let Some(at) = rest.find('[') {
        re.push_str(&regex::escape(&rest[..at]));
        let placeholder = PLACEHOLDERS
            .iter()
            .find(|(name, _)| rest[at..].starts_with(name));
        match placeholder {
            Some((name, stands_for)) => {
                re.push_str(stands_for);
                rest = &rest[at + name.len()..];
            }
            None => {
                re.push_str(r"\[");
                rest = &rest[at + 1..];
            }
        }
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    Pattern::Line(Regex::new(&re).expect("an escaped pattern"))
}

fn trimmed(lines: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Whether `output` matches the `shown` lines.
pub fn matches(shown: &[String], output: &[String]) -> bool {
    let patterns: Vec<Pattern> = trimmed(shown).into_iter().map(pattern).collect();
    let output = trimmed(output);
    from(&patterns, &output)
}

fn from(patterns: &[Pattern], output: &[&str]) -> bool {
    match patterns.split_first() {
        None => output.is_empty(),
        Some((Pattern::Any, rest)) => (0..=output.len()).any(|skip| from(rest, &output[skip..])),
        Some((Pattern::Line(re), rest)) => output
            .split_first()
            .is_some_and(|(line, after)| re.is_match(line) && from(rest, after)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn placeholders_stand_for_text_and_lines() {
        let shown = lines("job [..]\n...\nend");
        assert!(matches(&shown, &lines("job 01a2-77\nend")));
        assert!(matches(&shown, &lines("job 01a2-77\nx\ny\nend\n\n")));
        assert!(!matches(&shown, &lines("job 01a2-77\nend\nmore")));
        assert!(!matches(&shown, &lines("jobs 1\nend")));
        assert!(matches(&lines("a.b (c)"), &lines("a.b (c)   ")));
        assert!(!matches(&lines("a.b"), &lines("axb")));
        assert!(matches(&[], &lines("\n")));
        let id = lines("job [ID] [x]");
        assert!(matches(
            &id,
            &lines("job 019aef4c-5559-746b-a167-c0e196c2e00f [x]")
        ));
        assert!(!matches(&id, &lines("job error: no [x]")));
        assert!(!matches(&[], &lines("something")));
    }
}
