//! The `herald-producer` command line: its flags, what each subcommand does, and the exit
//! status that says how it went.
//!
//! Input is validated before Redis is contacted, so invalid input never leaves a trace in
//! Redis. Single enqueues print the job id alone on stdout; everything meant for people goes
//! to stderr, one line each, starting with `herald-producer: `.

mod args;
mod commands;
mod exit;

pub use args::*;
pub use commands::run;
pub use exit::*;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_fit_on_one_line_and_name_the_flag() {
        let err = Cli::try_parse_from(["herald-producer", "otp", "--phone", "+919999999999"])
            .err()
            .unwrap();
        let line = one_line(&err.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--code"), "{line}");
    }

    #[test]
    fn the_code_never_reaches_debug_output() {
        let cli = Cli::try_parse_from([
            "herald-producer",
            "otp",
            "--phone",
            "+919999999999",
            "--code",
            "246810",
        ])
        .unwrap();
        let Command::Otp(args) = cli.command else {
            panic!("not otp")
        };
        assert!(!format!("{:?}", args.to_spec()).contains("246810"));
    }
}
