//! Integration tests of the PostgreSQL adapter: the shared conformance suite, then what only
//! this backend has to get right (concurrent processes, retries, locking, bulk statements).
//!
//! They need a server: set `CICLO_TEST_POSTGRES_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`). Each test creates a database of its own from
//! that URL's server and drops it at the end, so tests run in parallel. Without the variable
//! every test says it was skipped and passes.

mod adapter;
mod conformance;
mod support;
