//! Every command example in README.md and docs/*.md runs as written, against a real Redis
//! (a redis-server per page) and the real binaries, and prints what the page shows under it.
//! Each page's `console` blocks run in order in one shell (`session`): the steps a reader
//! follows from the top of the page. Blocks not run say why (`blocks::Skip`); the test
//! prints what it skipped, by reason. JavaScript is not run, but may call only what it
//! defines (`javascript`). A command must exit 0, unless the command after it is
//! `echo $?` (which then shows its status).

mod blocks;
mod javascript;
mod matching;
mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use blocks::{Block, Skip, Treatment};
use session::Session;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// README.md and every page under docs/, relative to the repository.
fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_string(), "CHANGELOG.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .expect("read docs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn page_blocks(page: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(repo().join(page)).expect("read a page");
    blocks::blocks(page, text.as_str())
}

/// Runs the console blocks of one page; the failures, each naming its line.
fn run_page(bin_dir: &Path, page: &str, runnable: &[Block]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut session = Session::start(bin_dir);
    let steps: Vec<blocks::Step> = runnable.iter().flat_map(blocks::steps).collect();
    for (index, step) in steps.iter().enumerate() {
        let at = format!("{page}:{}: $ {}", step.line, step.command);
        let command = step.command.trim_end();
        if let Some(command) = command.strip_suffix('&').filter(|c| !c.ends_with('&')) {
            if let Err(why) = session.background(command.trim_end(), &step.expected) {
                failures.push(format!("{at}\n  {why}"));
                break;
            }
            continue;
        }
        let outcome = match session.run(command) {
            Ok(outcome) => outcome,
            Err(why) => {
                failures.push(format!("{at}\n  {why}"));
                break;
            }
        };
        let status_shown = steps
            .get(index + 1)
            .is_some_and(|next| next.command.trim() == "echo $?");
        let shown: Vec<String> = step.expected.iter().map(|l| session.ported(l)).collect();
        if outcome.status != 0 && !status_shown {
            failures.push(format!(
                "{at}\n  exited {} (show it with `$ echo $?` if that is meant); output:\n{}{}",
                outcome.status,
                outcome.output.join("\n"),
                session.background_logs()
            ));
            break;
        }
        if !matching::matches(&shown, &outcome.output) {
            failures.push(format!(
                "{at}\n  printed:\n{}\n  the page shows:\n{}{}",
                outcome.output.join("\n"),
                shown.join("\n"),
                session.background_logs()
            ));
        }
    }
    drop(session);
    failures
}

#[test]
fn every_command_example_runs_as_shown() {
    let test = "every_command_example_runs_as_shown";
    if !herald_tests::require_tool("jq", "jq", test)
        || !herald_tests::require_tool("curl", "curl", test)
    {
        return;
    }
    let bin_dir = herald_tests::cargo_bin("herald-producer")
        .parent()
        .expect("the binaries' directory")
        .to_path_buf();
    let mut errors = Vec::new();
    let mut skipped: BTreeMap<Skip, Vec<String>> = BTreeMap::new();
    let mut not_commands: BTreeMap<String, usize> = BTreeMap::new();
    let mut ran = 0;
    for page in pages() {
        let mut runnable = Vec::new();
        for block in page_blocks(&page) {
            match blocks::treatment(&block) {
                Ok(Treatment::Run) => runnable.push(block),
                Ok(Treatment::Skipped(reason)) => {
                    skipped.entry(reason).or_default().push(block.at())
                }
                Ok(Treatment::NotCommands(lang)) => {
                    if lang == "js" {
                        let undefined = javascript::undefined_calls(&block.body);
                        if !undefined.is_empty() {
                            errors.push(format!(
                                "{}: the JavaScript calls what it never defines: {undefined:?}",
                                block.at()
                            ));
                        }
                    }
                    *not_commands.entry(lang).or_default() += 1
                }
                Err(why) => errors.push(why),
            }
        }
        if !runnable.is_empty() {
            ran += runnable
                .iter()
                .map(|b| blocks::steps(b).len())
                .sum::<usize>();
            errors.extend(run_page(&bin_dir, &page, &runnable));
        }
    }
    println!("ran {ran} commands");
    for (reason, places) in &skipped {
        println!(
            "skipped, {reason} ({}): {}",
            reason.why(),
            places.join(", ")
        );
    }
    for (lang, count) in &not_commands {
        println!("not commands: {count} {lang} block(s)");
    }
    assert!(ran > 0, "no console block found");
    assert!(errors.is_empty(), "\n{}", errors.join("\n\n"));
}
