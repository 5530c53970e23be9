//! sh — source hashing (`ip_vs_sh.c`, spec 1.11), with the sh-fallback
//! and sh-port service flags.

use super::{hash_32, PacketInfo, SvcView};
use crate::ipvs::service::DestId;

/// `CONFIG_IP_VS_SH_TAB_BITS` (default).
pub const SH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
const SH_TAB_MASK: u32 = SH_TAB_SIZE as u32 - 1;

/// The bucket table: dests in list order, each filling `max(weight, 1)`
/// consecutive buckets per round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sh {
    buckets: [Option<DestId>; SH_TAB_SIZE],
}

impl Sh {
    /// `init_service`: assigns the buckets from the current list.
    pub fn new(view: SvcView<'_>) -> Sh {
        let mut sh = Sh { buckets: [None; SH_TAB_SIZE] };
        sh.assign(view);
        sh
    }

    /// Reassigns every bucket (on init, add, delete and edit).
    pub fn assign(&mut self, view: SvcView<'_>) {
        let order = view.order;
        let mut pos = 0;
        let mut filled = 0u32;
        for b in self.buckets.iter_mut() {
            if order.is_empty() {
                *b = None;
                continue;
            }
            let d = order[pos];
            *b = Some(d);
            filled += 1;
            // The kernel's `++d_count >= weight`: weight 0 still takes one.
            if filled >= view.dest(d).weight {
                pos = (pos + 1) % order.len();
                filled = 0;
            }
        }
    }

    /// The bucket table.
    pub fn buckets(&self) -> &[Option<DestId>; SH_TAB_SIZE] {
        &self.buckets
    }

    /// The bucket of the client (address, plus source port with sh-port).
    #[inline]
    pub fn hash(view: SvcView<'_>, pkt: &PacketInfo) -> u32 {
        let port = if view.sh_port() && matches!(pkt.proto, 6 | 17 | 132) { u32::from(pkt.sport) } else { 0 };
        hash_32(u32::from(pkt.saddr).wrapping_add(port), SH_TAB_BITS)
    }

    /// The hashed bucket's dest if usable (weight > 0, not OVERLOAD); with
    /// sh-fallback, probes further buckets (starting at `2h`, the kernel's
    /// double-offset quirk) until an empty bucket or a usable dest.
    #[inline]
    pub fn schedule(&self, view: SvcView<'_>, pkt: &PacketInfo) -> Option<DestId> {
        let usable = |d: DestId| {
            let dest = view.dest(d);
            dest.weight > 0 && !dest.overload
        };
        let h = Self::hash(view, pkt);
        let d = self.buckets[h as usize]?;
        if usable(d) {
            return Some(d);
        }
        if !view.sh_fallback() {
            return None;
        }
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + h) & SH_TAB_MASK;
            let d = self.buckets[((roffset + h) & SH_TAB_MASK) as usize]?;
            if usable(d) {
                return Some(d);
            }
        }
        None
    }
}
