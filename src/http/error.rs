//! The errors of the HTTP client: one enum, mapped to `fast_litellm.errors` at the binding edge.

use std::error::Error as StdError;

/// Why a request produced no usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The caller's URL (relative without a base URL, no host, not http/https, unparsable).
    #[error("{0}")]
    InvalidUrl(String),
    /// A header name or value HTTP does not allow, or a bad option.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("connect timeout: no connection to {0} within the connect timeout")]
    ConnectTimeout(String),
    #[error("read timeout: the server sent nothing for the read timeout")]
    ReadTimeout,
    #[error("write timeout: the request could not be sent within the write timeout")]
    WriteTimeout,
    #[error("pool timeout: no free connection within the pool timeout ({0} in use)")]
    PoolTimeout(usize),
    #[error("cannot connect to {host}: {detail}")]
    Connect { host: String, detail: String },
    /// The server broke the exchange (closed mid-response, not HTTP).
    #[error("{0}")]
    Protocol(String),
    /// The connection was reset or aborted under a read (what httpx calls a `ReadError`).
    #[error("{0}")]
    Reset(String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A response opened before `fork()`, read in the child.
    #[error(
        "this response was opened before os.fork(); only the process that opened it can read it"
    )]
    Forked,
}

impl HttpError {
    /// The name of its kind in the pool statistics (`errors`).
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::InvalidUrl(_)
            | HttpError::InvalidRequest(_)
            | HttpError::Closed
            | HttpError::Forked => "other",
            HttpError::ConnectTimeout(_) => "connect_timeout",
            HttpError::ReadTimeout => "read_timeout",
            HttpError::WriteTimeout => "write_timeout",
            HttpError::PoolTimeout(_) => "pool_timeout",
            HttpError::Connect { .. } => "connect",
            HttpError::Protocol(_) | HttpError::Reset(_) => "protocol",
        }
    }

    /// Whether nothing reached the server, so sending again is safe.
    pub fn is_before_sending(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::ConnectTimeout(_)
        )
    }
}

/// The I/O error our connection wrapper raises when a read or write timeout fires; found again
/// in hyper's error chain to tell which timeout it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IoTimeout {
    #[error("read timeout")]
    Read,
    #[error("write timeout")]
    Write,
    #[error("connect timeout")]
    Connect,
}

/// An error and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// Walks an error's sources for one of our I/O timeouts.
pub(crate) fn find_timeout(err: &(dyn StdError + 'static)) -> Option<IoTimeout> {
    chain(err).find_map(|e| {
        e.downcast_ref::<IoTimeout>().copied().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<IoTimeout>())
                .copied()
        })
    })
}

/// Whether an error chain holds an I/O error of a connection reset or aborted by the peer.
pub(crate) fn is_reset(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            )
        })
    })
}

/// The innermost message of an error chain, which says what actually happened ("Connection
/// refused") where the outer ones say where ("client error (Connect)").
pub(crate) fn root_message(err: &(dyn StdError + 'static)) -> String {
    let mut messages: Vec<String> = chain(err).map(|e| e.to_string()).collect();
    messages.dedup();
    // hyper-util's outer "client error (Connect)" says nothing the caller can act on.
    messages.retain(|m| !m.starts_with("client error"));
    messages.join(": ")
}
