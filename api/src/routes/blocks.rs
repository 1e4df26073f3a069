//! `GET /api/v1/blocks`.

use super::{block_json, db};
use crate::Shared;
use crate::error::ApiError;
use crate::params::QueryArgs;
use crate::types::{BlockPage, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use utoipa::IntoParams;

/// Query of every plain list (documentation; parsed by `QueryArgs`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct PageQuery {
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    offset: Option<u64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
}

/// Blocks the pool found, highest first, with status, confirmations,
/// reward, finder and an explorer link.
#[utoipa::path(
    get,
    path = "/api/v1/blocks",
    tag = "blocks",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of blocks", body = BlockPage),
        (status = 400, description = "Bad parameter", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list(State(app): State<Shared>, uri: Uri) -> Result<Json<BlockPage>, ApiError> {
    let page = QueryArgs::parse(&uri, &["offset", "limit"])?.page()?;
    let store = &app.state.store;
    let (blocks, counts) = tokio::try_join!(
        db(store.blocks_page(page.offset, page.limit)),
        db(store.counts()),
    )?;
    Ok(Json(BlockPage {
        items: blocks
            .iter()
            .map(|b| block_json(b, &app.state.explorer_base_url))
            .collect(),
        offset: page.offset,
        limit: page.limit,
        total: counts.blocks,
    }))
}
