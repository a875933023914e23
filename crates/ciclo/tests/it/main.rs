//! Integration tests of the `ciclo` binary: it is built, started as a child process and spoken
//! to over HTTP, as a person or a script would. One test binary for the crate (see `support` for
//! the reusable spawn helper).

mod bench;
mod cli;
mod durability;
mod sdk;
mod serve;
mod support;
