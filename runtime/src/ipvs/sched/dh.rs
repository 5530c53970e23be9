//! dh — destination hashing (`ip_vs_dh.c`, spec 1.10).

use super::{hash_32, PacketInfo, SvcView};
use crate::ipvs::service::DestId;

/// `IP_VS_DH_TAB_BITS`.
pub const DH_TAB_BITS: u32 = 8;
/// Number of buckets.
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// The bucket table: bucket `i` holds the dest at list position `i mod n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dh {
    buckets: [Option<DestId>; DH_TAB_SIZE],
}

impl Dh {
    /// `init_service`: assigns the buckets from the current list.
    pub fn new(view: SvcView<'_>) -> Dh {
        let mut dh = Dh { buckets: [None; DH_TAB_SIZE] };
        dh.assign(view);
        dh
    }

    /// Reassigns every bucket (on init, add and delete; weights ignored,
    /// weight-0 dests included; no dests → all empty).
    pub fn assign(&mut self, view: SvcView<'_>) {
        let order = view.order;
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if order.is_empty() { None } else { Some(order[i % order.len()]) };
        }
    }

    /// The bucket table.
    pub fn buckets(&self) -> &[Option<DestId>; DH_TAB_SIZE] {
        &self.buckets
    }

    /// The bucket's dest if it is available, has weight > 0 and is not
    /// OVERLOAD; otherwise none (no fallback).
    #[inline]
    pub fn schedule(&self, view: SvcView<'_>, pkt: &PacketInfo) -> Option<DestId> {
        let b = hash_32(u32::from(pkt.daddr), DH_TAB_BITS) as usize;
        let d = self.buckets[b]?;
        let dest = view.dest(d);
        (dest.available && dest.weight > 0 && !dest.overload).then_some(d)
    }
}
