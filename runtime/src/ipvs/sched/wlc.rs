//! wlc — weighted least connection (`ip_vs_wlc.c`, spec 1.7); ipvsadm's
//! default scheduler.

use super::{wlc_pick, SvcView};
use crate::ipvs::service::DestId;

/// Minimises `overhead / weight` (compared as cross products); the first
/// non-OVERLOAD dest with weight > 0 is the initial candidate, ties keep
/// the earliest, a weight-0 dest can never win.
#[inline]
pub fn schedule(view: SvcView<'_>) -> Option<DestId> {
    wlc_pick(view)
}
