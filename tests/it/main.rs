//! Integration tests: real sshd, real SQLite, real HTTP.
mod harness;
