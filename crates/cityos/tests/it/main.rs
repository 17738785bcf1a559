//! Integration tests of the `cityos` command (one test binary): the CLI as a user runs
//! it, and the repository's tidiness rules.

mod browser;
mod cli;
mod crash;
mod tidy;
