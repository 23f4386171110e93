//! The documentation, checked against the binaries: the configuration reference is what the
//! binaries accept (`configuration`), and every command example in README.md and docs/ runs
//! as written and prints what the page shows (`examples`).

mod configuration;
mod examples;
