//! `docs/configuration.md` is rendered from the binaries' own command lines: every flag and
//! positional argument of every binary and subcommand, its environment variable, its default
//! and its help text, read from the same clap `Command` each binary parses (`CommandFactory`
//! on the `Cli` its library exports). The prose around the generated parts is by hand; the
//! parts between the markers are not. `HERALD_BLESS=1 cargo test -p herald-tests --test docs
//! configuration` writes them; otherwise the test fails when they differ, so a flag added,
//! renamed or re-documented without the reference fails the build.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use clap::{Arg, ArgAction, Args, Command, CommandFactory};
use herald_shared::config::{REDIS_HELP_HEADING, RedisArgs};

/// Every binary a deployment or a developer runs, in the order the reference shows them.
fn binaries() -> Vec<Command> {
    vec![
        herald_worker::cli::Cli::command(),
        producer::cli::Cli::command(),
        herald_webhook::cli::Cli::command(),
        herald_dashboard::cli::Cli::command(),
        herald_sandbox::cli::Args::command(),
        herald_demo::cli::Cli::command(),
    ]
}

/// The Redis connection flags, as every binary that talks to Redis flattens them.
fn redis_command() -> Command {
    RedisArgs::augment_args(Command::new("redis"))
}

fn is_redis(arg: &Arg) -> bool {
    arg.get_help_heading() == Some(REDIS_HELP_HEADING)
}

/// The arguments worth a row: not hidden, not clap's own `--help` / `--version`, not the
/// arguments a hand-over passes on whole (`herald-worker dashboard ARGS...`: its about says
/// where they go).
fn shown(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter(|arg| !arg.is_trailing_var_arg_set())
        .filter(|arg| {
            !matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpLong | ArgAction::Version
            )
        })
}

/// A switch (`--json`) takes no value.
fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// `--concurrency <CONCURRENCY>`, `--json`, `<ID>...`.
fn usage(arg: &Arg) -> String {
    let names = arg
        .get_value_names()
        .map(|names| names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap_or_else(|| vec![arg.get_id().to_string().to_uppercase()]);
    let value = names
        .iter()
        .map(|n| format!("<{n}>"))
        .collect::<Vec<_>>()
        .join(" ");
    let many = if matches!(arg.get_action(), ArgAction::Append) {
        "..."
    } else {
        ""
    };
    match arg.get_long() {
        Some(long) if takes_value(arg) => format!("--{long} {value}{many}"),
        Some(long) => format!("--{long}"),
        None => format!("{value}{many}"),
    }
}

/// Text for a table cell: one line, `|` escaped, `<` and `>` outside code spans as entities
/// (a browser would take `<key>` for a tag and show nothing).
fn cell(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(flat.len());
    let mut in_code = false;
    for c in flat.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '|' => out.push_str("\\|"),
            '<' if !in_code => out.push_str("&lt;"),
            '>' if !in_code => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The help text, whole (clap's long help when the doc comment has several paragraphs).
fn meaning(arg: &Arg) -> String {
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    let boolean = values.iter().all(|v| v == "`true`" || v == "`false`");
    let mut text = cell(help.trim_end_matches('.'));
    if !values.is_empty() && !boolean {
        text.push_str(&format!(" (one of {})", values.join(", ")));
    }
    if arg.is_required_set() {
        text.push_str(" (required)");
    }
    text
}

fn default(arg: &Arg) -> String {
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
        .collect();
    // An empty default (`--tenant-weights`: every tenant weighs 1) is no default.
    match (values.is_empty(), arg.is_required_set()) {
        (false, _) => format!("`{}`", values.join(",")),
        (true, true) => "required".into(),
        (true, false) if !takes_value(arg) => "off".into(),
        (true, false) => "none".into(),
    }
}

fn env(arg: &Arg) -> Option<String> {
    arg.get_env().map(|e| e.to_string_lossy().into_owned())
}

/// A table of `args`, or nothing when there are none.
fn table(args: &[&Arg]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let mut out = String::from("| flag | variable | default | meaning |\n|---|---|---|---|\n");
    for arg in args {
        let variable = env(arg).map_or_else(String::new, |e| format!("`{e}`"));
        writeln!(
            out,
            "| `{}` | {variable} | {} | {} |",
            usage(arg).replace('|', "\\|"),
            default(arg),
            meaning(arg)
        )
        .unwrap();
    }
    out.push('\n');
    out
}

/// Where each variable is read: `variable -> [(command, flag)]`.
type Readers = BTreeMap<String, Vec<(String, String)>>;

/// One command's section, then its subcommands', depth first.
fn render_command(
    path: &str,
    command: &Command,
    depth: usize,
    out: &mut String,
    readers: &mut Readers,
) {
    let hashes = "#".repeat(depth.min(4));
    writeln!(out, "{hashes} `{path}`\n").unwrap();
    if let Some(about) = command.get_about() {
        writeln!(out, "{}\n", cell(&about.to_string())).unwrap();
    }
    let own: Vec<&Arg> = shown(command).filter(|a| !is_redis(a)).collect();
    let globals: Vec<&Arg> = own.iter().copied().filter(|a| a.is_global_set()).collect();
    out.push_str(&table(&own));
    if !globals.is_empty() {
        let names: Vec<String> = globals.iter().map(|a| format!("`{}`", usage(a))).collect();
        writeln!(
            out,
            "Every subcommand below also takes {}.\n",
            names.join(", ")
        )
        .unwrap();
    }
    if shown(command).any(is_redis) {
        writeln!(
            out,
            "With the [Redis connection](#redis-connection) flags{}.\n",
            if command.get_subcommands().next().is_some() {
                ", which every subcommand below takes too"
            } else {
                ""
            }
        )
        .unwrap();
    }
    for arg in &own {
        if let Some(var) = env(arg) {
            readers
                .entry(var)
                .or_default()
                .push((path.to_string(), usage(arg)));
        }
    }
    if let Some(after) = command.get_after_help() {
        writeln!(out, "```text\n{}\n```\n", after.to_string().trim_end()).unwrap();
    }
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" || sub.is_hide_set() {
            continue;
        }
        render_command(
            &format!("{path} {}", sub.get_name()),
            sub,
            depth + 1,
            out,
            readers,
        );
    }
}

/// The generated parts: `flags` (the Redis connection, then every binary) and `variables`
/// (each variable and what reads it).
fn render() -> (String, String) {
    let mut flags = String::new();
    let mut readers = Readers::new();
    let redis = redis_command();
    let redis_args: Vec<&Arg> = shown(&redis).collect();
    writeln!(
        flags,
        "## Redis connection\n\nEvery binary but `herald-sandbox` takes these, every subcommand too \
         (`--help` lists them last, under \"{REDIS_HELP_HEADING}\").\n"
    )
    .unwrap();
    flags.push_str(&table(&redis_args));
    for binary in binaries() {
        // Every binary that talks to Redis takes exactly these.
        let theirs: Vec<String> = shown(&binary)
            .filter(|a| is_redis(a))
            .map(|a| a.get_id().to_string())
            .collect();
        if !theirs.is_empty() {
            let all: Vec<String> = redis_args.iter().map(|a| a.get_id().to_string()).collect();
            assert_eq!(
                theirs,
                all,
                "{}: the Redis connection flags",
                binary.get_name()
            );
        }
        render_command(binary.get_name(), &binary, 2, &mut flags, &mut readers);
    }
    let mut variables = String::from("| variable | read by |\n|---|---|\n");
    for arg in &redis_args {
        let var = env(arg).expect("every Redis flag has its variable");
        writeln!(
            variables,
            "| `{var}` | `{}`: the [Redis connection](#redis-connection), every binary but the sandbox |",
            usage(arg)
        )
        .unwrap();
        assert!(
            !readers.contains_key(&var),
            "{var} read outside the Redis connection"
        );
    }
    let mut rows: Vec<(String, String)> = readers
        .into_iter()
        .map(|(var, places)| {
            let places: Vec<String> = places
                .iter()
                .map(|(command, flag)| {
                    format!("`{command}` (`{}`)", flag.split(' ').next().unwrap_or(flag))
                })
                .collect();
            (var, places.join(", "))
        })
        .collect();
    rows.sort();
    for (var, places) in rows {
        writeln!(variables, "| `{var}` | {places} |").unwrap();
    }
    variables.push('\n');
    (flags, variables)
}

/// Replaces what lies between `<!-- NAME: generated ... -->` and `<!-- end NAME -->`.
fn splice(doc: &str, name: &str, generated: &str) -> String {
    let open = format!(
        "<!-- {name}: generated from the binaries' command lines by tests/tests/docs/configuration.rs; do not edit by hand -->\n"
    );
    let close = format!("<!-- end {name} -->");
    let start = doc
        .find(&open)
        .unwrap_or_else(|| panic!("docs/configuration.md has the marker {open:?}"))
        + open.len();
    let end = doc[start..]
        .find(&close)
        .unwrap_or_else(|| panic!("docs/configuration.md has the marker {close:?}"))
        + start;
    let mut out = doc.to_string();
    out.replace_range(start..end, &format!("\n{generated}"));
    out
}

/// `docs/configuration.md` shows every flag and variable the binaries accept, as they accept
/// them. `HERALD_BLESS=1 cargo test -p herald-tests --test docs configuration` rewrites it.
#[test]
fn the_configuration_doc_is_the_binaries_flags() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/configuration.md");
    let (flags, variables) = render();
    let blessed = splice(&splice(&doc, "flags", &flags), "variables", &variables);
    if std::env::var_os("HERALD_BLESS").is_some() {
        std::fs::write(&path, &blessed).expect("write docs/configuration.md");
        return;
    }
    if doc != blessed {
        let first = doc
            .lines()
            .zip(blessed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| doc.lines().count().min(blessed.lines().count()));
        panic!(
            "docs/configuration.md differs from the binaries' flags from line {}:\n  doc:      {}\n  binaries: {}\n\
             run `HERALD_BLESS=1 cargo test -p herald-tests --test docs configuration` and commit the result",
            first + 1,
            doc.lines().nth(first).unwrap_or("(end of file)"),
            blessed.lines().nth(first).unwrap_or("(end of file)"),
        );
    }
}

#[test]
fn cells_keep_code_and_hide_nothing() {
    assert_eq!(
        cell("sent as `Authorization: Basic <key>`;\n  a <key> | or\tnot"),
        "sent as `Authorization: Basic <key>`; a &lt;key&gt; \\| or not"
    );
}
