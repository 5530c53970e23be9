//! rr — round robin (`ip_vs_rr.c`, spec 1.4).
//!
//! The cursor is the last chosen dest or the list head. A pick walks from
//! the element after the cursor to the end, then (if the cursor is not the
//! head) from the first element up to and including the cursor, taking the
//! first dest that is not OVERLOAD and has weight > 0. Weights are
//! otherwise ignored.

use super::SvcView;
use crate::ipvs::service::DestId;

/// Round-robin state: the cursor as a list index (`None` = the head).
///
/// The kernel's cursor is a list node; we keep its index, so list changes
/// shift it: an insertion at the front moves it back by one position
/// (the same node), and deleting the cursor's node moves it to the
/// predecessor (the kernel's `del_dest` hook).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rr {
    cursor: Option<usize>,
}

impl Rr {
    /// `init_service`: the cursor starts at the head.
    pub fn new() -> Rr {
        Rr { cursor: None }
    }

    /// The cursor (list index of the last pick, `None` = head).
    pub fn cursor(&self) -> Option<usize> {
        self.cursor
    }

    /// A dest was inserted at the front: the cursor node is one further.
    pub fn dest_inserted_front(&mut self) {
        if let Some(c) = &mut self.cursor {
            *c += 1;
        }
    }

    /// The dest at `pos` was unlinked. If it was the cursor, the cursor
    /// moves to its predecessor (or the head), so the rotation continues
    /// with the element that followed it.
    pub fn dest_removed(&mut self, pos: usize) {
        self.cursor = match self.cursor {
            Some(c) if c == pos => pos.checked_sub(1),
            Some(c) if c > pos => Some(c - 1),
            other => other,
        };
    }

    /// Picks the next eligible dest after the cursor.
    #[inline]
    pub fn schedule(&mut self, view: SvcView<'_>) -> Option<DestId> {
        let order = view.order;
        let start = self.cursor.map_or(0, |c| c + 1);
        // Second pass: from the first element up to and including the cursor.
        let wrap = self.cursor.map_or(0..0, |c| 0..c + 1);
        for i in (start..order.len()).chain(wrap) {
            let dest = view.dest(order[i]);
            if !dest.overload && dest.weight > 0 {
                self.cursor = Some(i);
                return Some(order[i]);
            }
        }
        None
    }
}
