//! The fenced blocks of a Markdown page and what the examples test does with each: a
//! ```` ```console ```` block is run (its `$ ` lines are commands, the lines under each its
//! shown output); a block whose info string says `no-run:REASON` is shown but not run, for
//! one of [`Skip`]'s reasons; blocks in a language that is not a shell (```` ```text ````,
//! `json`, `rust`, `js`, `yaml`) hold no command. A shell block (`sh`, `bash`, `shell`) that is
//! neither run nor marked, or a block with no info string, is an error: every command a
//! page shows is run, or says why not.

use std::fmt;

/// One fenced block: where it starts, its info string and its text.
#[derive(Debug, Clone)]
pub struct Block {
    /// The page, relative to the repository (`docs/producing.md`).
    pub page: String,
    /// The line of its opening fence, from 1.
    pub line: usize,
    pub info: String,
    pub body: String,
}

impl Block {
    /// `docs/producing.md:12`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }
}

/// Why a block of commands is shown but not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// Needs Docker, podman, a registry or a Kubernetes cluster.
    Deploy,
    /// A benchmark: a release build and minutes of a machine; its figures are by hand.
    Bench,
    /// CI runs it as a step of its own, or a test runs it: the test suites, the demo,
    /// `deploy/validate.sh`, `promtool`'s checks of the alert rules.
    Ci,
    /// Needs a real Interakt account or a host on the internet.
    Production,
}

impl Skip {
    const ALL: [Skip; 4] = [Skip::Deploy, Skip::Bench, Skip::Ci, Skip::Production];

    fn name(self) -> &'static str {
        match self {
            Skip::Deploy => "deploy",
            Skip::Bench => "bench",
            Skip::Ci => "ci",
            Skip::Production => "production",
        }
    }

    pub fn why(self) -> &'static str {
        match self {
            Skip::Deploy => "needs Docker, podman or a Kubernetes cluster",
            Skip::Bench => "a benchmark: a release build and minutes",
            Skip::Ci => "CI runs it as a step of its own, or a test runs it",
            Skip::Production => "needs a real Interakt account or a public host",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the test does with a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    /// A `console` block: run, its output checked.
    Run,
    /// Commands shown but not run, for this reason.
    Skipped(Skip),
    /// No commands: a picture, a file's content, code in another language (named).
    NotCommands(String),
}

/// Languages whose blocks hold no shell command.
const NOT_SHELL: [&str; 10] = [
    "text", "json", "rust", "js", "yaml", "toml", "promql", "html", "jsonl", "diff",
];

/// What to do with `block`, or why its info string is not allowed.
pub fn treatment(block: &Block) -> Result<Treatment, String> {
    let mut words = block.info.split_whitespace();
    let Some(lang) = words.next() else {
        return Err(format!(
            "{}: a fenced block needs an info string: `console` (run), `sh no-run:REASON`, or \
             the language of what it shows (`text`, `json`, ...)",
            block.at()
        ));
    };
    let skip = words.find_map(|w| w.strip_prefix("no-run:"));
    match (lang, skip) {
        (_, Some(reason)) => Skip::ALL
            .into_iter()
            .find(|s| s.name() == reason)
            .map(Treatment::Skipped)
            .ok_or_else(|| {
                format!(
                    "{}: no-run:{reason} is not a reason; the reasons are {}",
                    block.at(),
                    Skip::ALL.map(|s| s.name()).join(", ")
                )
            }),
        ("console", None) => Ok(Treatment::Run),
        ("sh" | "bash" | "shell" | "zsh", None) => Err(format!(
            "{}: a shell block is run (```console, with `$ ` before each command and its \
             output below) or says why not (```sh no-run:REASON)",
            block.at()
        )),
        (lang, None) if NOT_SHELL.contains(&lang) => Ok(Treatment::NotCommands(lang.into())),
        (lang, None) => Err(format!(
            "{}: unknown info string `{lang}`: use `console`, `sh no-run:REASON`, or one of {}",
            block.at(),
            NOT_SHELL.join(", ")
        )),
    }
}

/// Every fenced block of `text` (a page at `page`), in order. Fences are three backticks at
/// the start of a line (an indented fence, in a list item, counts too) followed by an info
/// string without backticks, as CommonMark has it: a line that starts with inline code is
/// not one.
pub fn blocks(page: &str, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let fence = trimmed
            .strip_prefix("```")
            .filter(|info| !info.contains('`'));
        match (&mut open, fence) {
            (None, Some(info)) => open = Some((index + 1, info.trim().to_string(), String::new())),
            (Some(_), Some(rest)) if rest.trim().is_empty() => {
                let (line, info, body) = open.take().expect("an open block");
                out.push(Block {
                    page: page.to_string(),
                    line,
                    info,
                    body,
                });
            }
            (Some((_, _, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{page}: a fenced block is never closed");
    out
}

/// One command of a console block and the output shown under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The line of its `$ `, from 1 (in the page).
    pub line: usize,
    /// The command as the shell gets it (continuation lines joined with their `\`).
    pub command: String,
    /// The lines shown under it, to match (see `matching`).
    pub expected: Vec<String>,
}

/// The word that ends a here-document the line opens (`cat > f <<'EOF'` -> `EOF`).
fn here_document(line: &str) -> Option<String> {
    let (_, after) = line.split_once("<<")?;
    let word: String = after
        .trim_start_matches('-')
        .trim_start()
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// The steps of a console block: each `$ ` line (with the lines a trailing `\` continues it
/// on, and the lines of a here-document it opens, up to its end word), then the output lines
/// up to the next `$ `.
pub fn steps(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    let mut document_end: Option<String> = None;
    for (offset, line) in block.body.lines().enumerate() {
        if continued || document_end.is_some() {
            let step = steps.last_mut().expect("a command being continued");
            step.command.push('\n');
            step.command.push_str(line);
            if document_end.as_deref() == Some(line.trim()) {
                document_end = None;
            } else if document_end.is_none() {
                document_end = here_document(line);
            }
            continued = document_end.is_none() && line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: block.line + 1 + offset,
                command: command.to_string(),
                expected: Vec::new(),
            });
            document_end = here_document(command);
            continued = document_end.is_none() && line.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_string());
        } else {
            panic!(
                "{}: a console block starts with a `$ ` command, not {line:?}",
                block.at()
            );
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(info: &str, body: &str) -> Block {
        Block {
            page: "p.md".into(),
            line: 3,
            info: info.into(),
            body: body.into(),
        }
    }

    #[test]
    fn console_blocks_run_and_marked_ones_say_why_not() {
        assert_eq!(treatment(&block("console", "")), Ok(Treatment::Run));
        assert_eq!(
            treatment(&block("sh no-run:deploy", "")),
            Ok(Treatment::Skipped(Skip::Deploy))
        );
        assert_eq!(
            treatment(&block("text", "")),
            Ok(Treatment::NotCommands("text".into()))
        );
        assert!(treatment(&block("sh", "")).is_err());
        assert!(treatment(&block("", "")).is_err());
        assert!(treatment(&block("sh no-run:lazy", "")).is_err());
    }

    #[test]
    fn steps_split_commands_from_their_output() {
        let b = block(
            "console",
            "$ a --x \\\n    --y\none\n[..]\n$ b\n$ c &\nlistening\n$ cat > f <<'EOF'\n$ x\nEOF\ndone\n",
        );
        let got = steps(&b);
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].command, "cat > f <<'EOF'\n$ x\nEOF");
        assert_eq!(got[3].expected, vec!["done"]);
        assert_eq!(got[0].command, "a --x \\\n    --y");
        assert_eq!(got[0].expected, vec!["one", "[..]"]);
        assert_eq!(got[0].line, 4);
        assert!(got[1].expected.is_empty());
        assert_eq!(got[2].command, "c &");
        assert_eq!(got[2].expected, vec!["listening"]);
    }

    #[test]
    fn blocks_are_found_with_their_lines() {
        let text = "# t\n```console\n$ a\n```\n\n  ```text\n  x\n  ```\n```` ```sh ```` is code\n";
        let got = blocks("p.md", text);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].line, got[0].info.as_str()), (2, "console"));
        assert_eq!((got[1].line, got[1].info.as_str()), (6, "text"));
    }
}
