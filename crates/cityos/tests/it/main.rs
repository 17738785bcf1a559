//! Integration tests of the `cityos` command (one test binary): each command as a user
//! runs it, one file per command, the crash test, the web UI in a browser, and the
//! repository's tidiness rules.

mod assistance;
mod audit;
mod browser;
mod check;
mod classify;
mod cluster;
mod corrections;
mod crash;
mod demo;
mod help;
mod meals;
mod serve;
mod simulate;
mod support;
mod territory;
mod tidy;
mod whatif;
