//! JSON-RPC client for bitcoind (used by the pool for templates and blocks,
//! and by settlement to track block maturity), with failover across a list of nodes.
//!
//! Every call goes to the current node; a connection failure moves on to the
//! next one in the list, so a pool configured with two nodes keeps getting
//! templates while one restarts. Errors are classified (unreachable, bad
//! credentials, still in initial block download, RPC error code) so the caller
//! can log something an operator can act on and retry with backoff.

mod types;

pub use types::{BlockHeaderInfo, BlockchainInfo};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How the pool authenticates to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAuth {
    /// bitcoind's `.cookie` file, re-read on every call (it changes when the node restarts).
    Cookie(PathBuf),
    /// `rpcuser` / `rpcpassword`.
    UserPass {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

/// One bitcoind RPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// e.g. `http://127.0.0.1:18443/`.
    pub url: reqwest::Url,
    /// Credentials.
    pub auth: NodeAuth,
}

/// What went wrong talking to bitcoind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// No TCP connection or HTTP exchange was possible.
    #[error("node {url} is unreachable: {source}")]
    Unreachable {
        /// The node.
        url: reqwest::Url,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered HTTP 401/403.
    #[error("node {url} refused our credentials (check rpcuser/rpcpassword or the cookie file)")]
    Unauthorized {
        /// The node.
        url: reqwest::Url,
    },
    /// The cookie file could not be read.
    #[error("cannot read the cookie file {path}: {source}")]
    Cookie {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node is still syncing and serves no templates.
    #[error("node {url} is in initial block download")]
    InitialBlockDownload {
        /// The node.
        url: reqwest::Url,
    },
    /// The node answered with a JSON-RPC error.
    #[error("rpc {method} failed with code {code}: {message}")]
    Rpc {
        /// The method called.
        method: &'static str,
        /// bitcoind's error code (e.g. -10 in IBD, -8 invalid parameter).
        code: i64,
        /// bitcoind's message.
        message: String,
    },
    /// The node answered something that is not the expected JSON.
    #[error("rpc {method} returned an unexpected answer: {reason}")]
    Decode {
        /// The method called.
        method: &'static str,
        /// What did not fit.
        reason: String,
    },
    /// No node is configured.
    #[error("no bitcoind node is configured")]
    NoNodes,
}

impl NodeError {
    /// Whether another node might do better (the failover rule).
    fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Unauthorized { .. } | Self::Cookie { .. }
        )
    }
}

/// bitcoind's "in initial download" RPC error code.
const RPC_IN_WARMUP_OR_IBD: i64 = -10;

/// A bitcoind client over one or more nodes.
#[derive(Debug)]
pub struct NodeClient {
    endpoints: Vec<NodeEndpoint>,
    http: reqwest::Client,
    current: AtomicUsize,
    next_id: AtomicU64,
}

impl NodeClient {
    /// A client trying `endpoints` in order. Calls time out after `timeout`
    /// (long-poll calls use their own, longer timeout).
    pub fn new(endpoints: Vec<NodeEndpoint>, timeout: Duration) -> Result<Self, NodeError> {
        if endpoints.is_empty() {
            return Err(NodeError::NoNodes);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|source| NodeError::Unreachable {
                url: endpoints[0].url.clone(),
                source,
            })?;
        Ok(Self {
            endpoints,
            http,
            current: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        })
    }

    /// The node calls currently go to.
    pub fn current_url(&self) -> &reqwest::Url {
        &self.endpoints[self.current.load(Ordering::Relaxed) % self.endpoints.len()].url
    }

    /// Calls `method`, failing over to the next node on connection errors.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<T, NodeError> {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for attempt in 0..self.endpoints.len() {
            let index = (start + attempt) % self.endpoints.len();
            match self
                .call_one(&self.endpoints[index], method, &params, timeout)
                .await
            {
                Ok(value) => {
                    if attempt > 0 {
                        tracing::warn!(node = %self.endpoints[index].url, "failed over to node");
                        self.current.store(index, Ordering::Relaxed);
                    }
                    return serde_json::from_value(value).map_err(|e| NodeError::Decode {
                        method,
                        reason: e.to_string(),
                    });
                }
                Err(e) if e.is_connection() => {
                    tracing::warn!(node = %self.endpoints[index].url, error = %e, "node call failed");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(NodeError::NoNodes))
    }

    async fn call_one(
        &self,
        node: &NodeEndpoint,
        method: &'static str,
        params: &Value,
        timeout: Option<Duration>,
    ) -> Result<Value, NodeError> {
        let (user, password) = match &node.auth {
            NodeAuth::UserPass { user, password } => (user.clone(), password.clone()),
            NodeAuth::Cookie(path) => {
                let cookie = std::fs::read_to_string(path).map_err(|source| NodeError::Cookie {
                    path: path.clone(),
                    source,
                })?;
                match cookie.trim().split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => {
                        return Err(NodeError::Cookie {
                            path: path.clone(),
                            source: std::io::Error::other("cookie is not user:password"),
                        });
                    }
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params});
        let mut request = self
            .http
            .post(node.url.clone())
            .basic_auth(user, Some(password))
            .json(&body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .send()
            .await
            .map_err(|source| NodeError::Unreachable {
                url: node.url.clone(),
                source,
            })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(NodeError::Unauthorized {
                url: node.url.clone(),
            });
        }
        // bitcoind answers RPC errors with HTTP 500 and a JSON body.
        let reply: Value = response
            .json()
            .await
            .map_err(|source| NodeError::Unreachable {
                url: node.url.clone(),
                source,
            })?;
        if let Some(error) = reply.get("error").filter(|e| !e.is_null()) {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if code == RPC_IN_WARMUP_OR_IBD && method == "getblocktemplate" {
                return Err(NodeError::InitialBlockDownload {
                    url: node.url.clone(),
                });
            }
            return Err(NodeError::Rpc {
                method,
                code,
                message,
            });
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    /// `getblocktemplate {"rules": ["segwit"]}`, long-polling on `longpollid` if given
    /// (the call then returns when the template changes, or after `longpoll_timeout`).
    pub async fn get_block_template(
        &self,
        longpollid: Option<&str>,
        longpoll_timeout: Duration,
    ) -> Result<Value, NodeError> {
        let mut request = json!({"rules": ["segwit"]});
        let timeout = match longpollid {
            Some(id) => {
                request["longpollid"] = json!(id);
                Some(longpoll_timeout)
            }
            None => None,
        };
        self.call("getblocktemplate", json!([request]), timeout)
            .await
    }

    /// `submitblock`: `None` when the node accepted the block, else its reason
    /// (`"duplicate"`, `"inconclusive"`, `"high-hash"`…). Acceptance must still
    /// be confirmed against the chain.
    pub async fn submit_block(&self, block_hex: &str) -> Result<Option<String>, NodeError> {
        self.call("submitblock", json!([block_hex]), None).await
    }

    /// `getblockchaininfo`.
    pub async fn get_blockchain_info(&self) -> Result<BlockchainInfo, NodeError> {
        self.call("getblockchaininfo", json!([]), None).await
    }

    /// `getbestblockhash` (display order hex).
    pub async fn get_best_block_hash(&self) -> Result<String, NodeError> {
        self.call("getbestblockhash", json!([]), None).await
    }

    /// `getblockhash height`; `None` if the chain is shorter.
    pub async fn get_block_hash(&self, height: u64) -> Result<Option<String>, NodeError> {
        match self.call("getblockhash", json!([height]), None).await {
            Ok(hash) => Ok(Some(hash)),
            // -8: block height out of range.
            Err(NodeError::Rpc { code: -8, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `getblockheader hash true`; `None` if the node does not know the block.
    pub async fn get_block_header(&self, hash: &str) -> Result<Option<BlockHeaderInfo>, NodeError> {
        match self.call("getblockheader", json!([hash, true]), None).await {
            Ok(header) => Ok(Some(header)),
            // -5: block not found.
            Err(NodeError::Rpc { code: -5, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
