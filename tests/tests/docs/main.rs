//! The documentation, checked against the binaries: the configuration reference is what the
//! binaries accept (`configuration`).

mod configuration;
