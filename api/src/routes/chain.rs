//! `GET /api/v1/chain`.

use crate::Shared;
use crate::error::ApiError;
use crate::params::QueryArgs;
use crate::types::{ChainInfo, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;

/// The deployment the front end claims on: chain id, distributor, token,
/// the sats → token scale and the Bitcoin explorer.
#[utoipa::path(
    get,
    path = "/api/v1/chain",
    tag = "chain",
    responses(
        (status = 200, description = "The deployment", body = ChainInfo),
        (status = 400, description = "Unexpected query parameter", body = ErrorBody),
    )
)]
pub(crate) async fn chain(
    State(app): State<Shared>,
    uri: Uri,
) -> Result<Json<ChainInfo>, ApiError> {
    QueryArgs::parse(&uri, &[])?;
    let s = &app.state;
    let (token, on_chain, error) = match &app.chain {
        None => (None, None, None),
        Some(reader) => {
            let (token, heads) = tokio::join!(reader.token(), reader.heads());
            let error = [token.as_ref().err(), heads.as_ref().err()]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>();
            (
                token.ok(),
                heads.ok(),
                (!error.is_empty()).then(|| error.join("; ")),
            )
        }
    };
    Ok(Json(ChainInfo {
        chain_id: s.domain.chain_id,
        distributor: s.domain.distributor.to_checksum(None),
        token_per_sat: s.token_per_sat.to_string(),
        explorer_base_url: s.explorer_base_url.trim_end_matches('/').to_owned(),
        rpc_configured: app.chain.is_some(),
        token,
        on_chain,
        on_chain_error: error,
    }))
}
