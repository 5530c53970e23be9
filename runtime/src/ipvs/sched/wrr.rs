//! wrr — weighted round robin (`ip_vs_wrr.c`, spec 1.5).
//!
//! Passes over the list with a decreasing required weight `cw`
//! (`mw, mw − di, …, 1`); each pass takes, in list order, every dest whose
//! weight is ≥ `cw` and which is not OVERLOAD. `di` is the gcd of the
//! positive weights and `mw = max − (di − 1)`, so the last pass has cw = 1.

use super::SvcView;
use crate::ipvs::service::DestId;

/// The kernel's `ip_vs_wrr_mark`: cursor (list index, `None` = head),
/// current weight, maximum weight, decreasing interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrr {
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `(di, mw)` of the current weights.
fn weights(view: SvcView<'_>) -> (i64, i64) {
    let mut g = 0i64;
    let mut max = 0i64;
    for (_, dest) in view.iter() {
        let w = i64::from(dest.weight);
        if w > 0 {
            g = if g > 0 { gcd(w, g) } else { w };
        }
        max = max.max(w);
    }
    let di = if g > 0 { g } else { 1 };
    (di, max - (di - 1))
}

impl Wrr {
    /// `init_service`: cursor at the head, `cw = mw`.
    pub fn new(view: SvcView<'_>) -> Wrr {
        let (di, mw) = weights(view);
        Wrr { cl: None, cw: mw, mw, di }
    }

    /// `(cursor, cw, mw, di)`, for tests and dumps.
    pub fn state(&self) -> (Option<usize>, i64, i64, i64) {
        (self.cl, self.cw, self.mw, self.di)
    }

    /// `dest_changed` (the add, delete and edit hooks): cursor to the
    /// head, recompute di and mw, then clamp or realign cw.
    pub fn dest_changed(&mut self, view: SvcView<'_>) {
        let (di, mw) = weights(view);
        self.cl = None;
        self.di = di;
        self.mw = mw;
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    /// One pick (the kernel loop, including its termination rules when
    /// every dest is OVERLOAD).
    #[inline]
    pub fn schedule(&mut self, view: SvcView<'_>) -> Option<DestId> {
        if self.mw == 0 {
            return None;
        }
        let order = view.order;
        let last = self.cl;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut start = self.cl.map_or(0, |c| c + 1);
        loop {
            for (i, &d) in order.iter().enumerate().skip(start) {
                let dest = view.dest(d);
                if !dest.overload && i64::from(dest.weight) >= self.cw {
                    self.cl = Some(i);
                    return Some(d);
                }
                if stop == Some(i) {
                    // "all destinations are overloaded"; cursor left there.
                    self.cl = Some(i);
                    return None;
                }
            }
            // Reached the head.
            start = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}
