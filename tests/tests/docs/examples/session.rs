//! One page's shell: a `bash` that runs the page's commands one at a time, in order, so an
//! `export` or a background process (`$ herald-sandbox ... &`) stays for the commands after
//! it, as it would for a reader typing them. It runs in a directory of its own, with the
//! workspace's binaries first on PATH, nothing of the caller's environment but PATH and
//! HOME, and `REDIS_URL` at the page's own redis-server.
//!
//! Pages name the usual ports (Redis on 6379, the API on 8080, ...); each session maps them
//! to free ports, in the commands and in the output they show, so two runs never meet and
//! no page ever reaches a Redis on 6379. A command ending in `&` runs in the background with
//! its output in a log, and the lines shown under it are awaited in that log, in order.
//! The shell and everything it started are one process group, ended when the session is
//! dropped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use herald_tests::{RedisServer, free_port};
use regex::Regex;

use super::matching::matches;

/// The ports pages name: Redis, the API, the webhook receiver, the sandbox, the dashboard,
/// the worker's metrics.
const PAGE_PORTS: [u16; 6] = [6379, 8080, 8081, 8089, 8090, 9090];

/// The longest one command may take (a worker draining a few jobs, `status`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The line the shell prints after each command, with its exit status.
const DONE: &str = "@@herald-docs-done";

/// What one foreground command did.
pub struct Outcome {
    pub output: Vec<String>,
    pub status: i32,
}

pub struct Session {
    shell: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// The working directory; background logs go in it too.
    dir: tempfile::TempDir,
    /// (the port a page names, the port this session uses).
    ports: Vec<(u16, u16)>,
    backgrounds: usize,
    _redis: RedisServer,
}

impl Session {
    /// A shell with `bin_dir` first on PATH and a redis-server of its own.
    pub fn start(bin_dir: &std::path::Path) -> Session {
        let redis = RedisServer::start();
        let ports: Vec<(u16, u16)> = PAGE_PORTS
            .iter()
            .map(|&port| {
                (
                    port,
                    if port == 6379 {
                        redis.port()
                    } else {
                        free_port()
                    },
                )
            })
            .collect();
        let dir = tempfile::tempdir().expect("a directory for the page's session");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut shell = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .env_clear()
            .env("PATH", path)
            .env(
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()),
            )
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .env("REDIS_URL", redis.url())
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("run bash");
        let stdin = shell.stdin.take().expect("the shell's stdin");
        let stdout = shell.stdout.take().expect("the shell's stdout");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut session = Session {
            shell,
            stdin,
            lines,
            dir,
            ports,
            backgrounds: 0,
            _redis: redis,
        };
        // The shell's own complaints (a syntax error) go where the output is read.
        session.write("exec 2>&1\n__herald_status() { return \"$1\"; }\n__s=0\n");
        session
    }

    /// `text` with the ports a page names replaced by this session's.
    pub fn ported(&self, text: &str) -> String {
        let re = Regex::new(r"(127\.0\.0\.1|localhost|0\.0\.0\.0):(\d{4})\b").expect("regex");
        re.replace_all(text, |c: &regex::Captures| {
            let port: u16 = c[2].parse().unwrap_or(0);
            match self.ports.iter().find(|(page, _)| *page == port) {
                Some((_, ours)) => format!("{}:{ours}", &c[1]),
                None => c[0].to_string(),
            }
        })
        .into_owned()
    }

    fn write(&mut self, text: &str) {
        self.stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
            .expect("write to the page's shell");
    }

    /// Runs `command` in the foreground and returns its output (stdout and stderr, in
    /// order) and exit status; `$?` is that status for the next command.
    pub fn run(&mut self, command: &str) -> Result<Outcome, String> {
        let command = self.ported(command);
        // The status of the command before first: `$?` stays what it was for this command (an
        // `echo $?`), and a command that is only a comment (`$ # then...`) is still a command.
        self.write(&format!(
            "{{ __herald_status \"$__s\"\n{command}\n}} </dev/null\n__s=$?; printf '\\n{DONE} %s\\n' \"$__s\"; __herald_status \"$__s\"\n"
        ));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let mut output = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(DONE) {
                    Some(status) => {
                        // The blank line printed before the marker.
                        if output.last().is_some_and(|l: &String| l.is_empty()) {
                            output.pop();
                        }
                        let status = status.trim().parse().unwrap_or(-1);
                        return Ok(Outcome { output, status });
                    }
                    None => output.push(line),
                },
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "did not finish within {COMMAND_TIMEOUT:?}; its output so far:\n{}{}",
                        output.join("\n"),
                        self.background_logs()
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "the shell exited (a syntax error?); its output:\n{}",
                        output.join("\n")
                    ));
                }
            }
        }
    }

    /// Starts `command` (without its `&`) in the background, its output in a log, and
    /// waits until the log holds the `shown` lines, in order.
    pub fn background(&mut self, command: &str, shown: &[String]) -> Result<(), String> {
        self.backgrounds += 1;
        let log = self
            .dir
            .path()
            .join(format!("background-{}.log", self.backgrounds));
        let started = self.run(&format!("{command} >{} 2>&1 &", log.display()))?;
        if started.status != 0 || !started.output.is_empty() {
            return Err(format!("could not start: {}", started.output.join("\n")));
        }
        if shown.is_empty() {
            return Ok(());
        }
        let mut wanted = vec!["...".to_string()];
        wanted.extend(shown.iter().map(|l| self.ported(l)));
        wanted.push("...".into());
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(String::from).collect();
            if matches(&wanted, &lines) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "its output never showed the lines shown; it is:\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Session {
    /// The last lines of every background command's output, for a failure's message.
    pub fn background_logs(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.backgrounds {
            let log = self.dir.path().join(format!("background-{n}.log"));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(8)..];
            out.push_str(&format!(
                "\n  background command {n}, its last lines:\n    {}",
                tail.join("\n    ")
            ));
        }
        out
    }
}

impl Drop for Session {
    /// Ends the shell and everything it started: SIGTERM to the group (a worker hands its
    /// jobs back and exits), then SIGKILL to what is left.
    fn drop(&mut self) {
        let group = format!("-{}", self.shell.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        let _ = self.stdin.write_all(b"exit\n");
        signal("-TERM");
        let _ = self.shell.wait();
        let alive = || {
            Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL");
    }
}
