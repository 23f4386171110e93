//! `herald-worker webhook` over real HTTP and a real redis-server: the receiver's contract
//! (signatures, bodies, de-duplication, answers) and what processing makes of each event
//! (timelines, the inbound stream, the unhandled stream); and the binaries' start-up.

mod support;

mod cli;
mod processing;
mod receiver;
mod supervision;
