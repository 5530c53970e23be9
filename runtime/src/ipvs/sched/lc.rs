//! lc — least connection (`ip_vs_lc.c`, spec 1.6).

use super::{lc_pick, SvcView};
use crate::ipvs::service::DestId;

/// The non-OVERLOAD dest with weight > 0 and the smallest overhead; ties
/// keep the earliest in list order. Weights other than 0 are ignored.
#[inline]
pub fn schedule(view: SvcView<'_>) -> Option<DestId> {
    lc_pick(view)
}
