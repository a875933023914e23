//! The connection pool's manager: r2d2_postgres's, plus a cache of prepared statements kept
//! with each connection.
//!
//! postgres 0.19 has no statement cache of its own, and preparing a statement costs a round
//! trip; the hot paths (ingestion, profile reads) run the same few statements thousands of
//! times a second, so each connection keeps the statements it prepared, keyed by their SQL.

use postgres::{Client, NoTls, Statement};
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;

/// A connection and the statements prepared on it (named statements live as long as the
/// session, whatever happens to the transactions they were prepared in).
pub(crate) struct PooledClient {
    pub(crate) client: Client,
    pub(crate) statements: HashMap<&'static str, Statement>,
}

/// Opens connections for r2d2. TLS is not supported yet: connect over a private network or a
/// Unix socket.
#[derive(Debug)]
pub(crate) struct Manager {
    inner: PostgresConnectionManager<NoTls>,
}

impl Manager {
    pub(crate) fn new(config: postgres::Config) -> Manager {
        Manager {
            inner: PostgresConnectionManager::new(config, NoTls),
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PooledClient;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PooledClient, postgres::Error> {
        Ok(PooledClient {
            client: self.inner.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, connection: &mut PooledClient) -> Result<(), postgres::Error> {
        self.inner.is_valid(&mut connection.client)
    }

    fn has_broken(&self, connection: &mut PooledClient) -> bool {
        self.inner.has_broken(&mut connection.client)
    }
}
