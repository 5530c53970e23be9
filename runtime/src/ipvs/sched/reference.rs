//! A second, deliberately naive model of one IPVS service, written straight
//! from the spec text (sections 1.1–1.11, 2.4, 2.8), used only to test the
//! real implementation ([`crate::ipvs::service::Services`] and the
//! schedulers) with long random operation sequences.
//!
//! It shares no code with the real schedulers: dests are plain structs
//! named by their index in `dests` (objects are never reused), cursors are
//! dest objects found by linear search, hash tables are recomputed from
//! scratch on every call where the spec allows it (sh, dh from a snapshot
//! of the list), lc/wlc are a quadratic "minimum, earliest on ties" search,
//! and the lblc/lblcr tables are plain hash maps whose buckets are computed
//! only when the garbage collector walks them.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::SchedKind;
use crate::ipvs::service::Overhead;

/// One second of the model's clock, which is packet time in milliseconds
/// like the real one's; the expirations are given in seconds.
const SEC: u64 = 1000;

/// One dest object of the reference model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RDest {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    pub u: u32,
    pub l: u32,
    pub active: u32,
    pub inact: u32,
    pub persist: u32,
    pub overload: bool,
    pub available: bool,
    pub conns_stat: u64,
    pub freed: bool,
    idle_since: Option<u64>,
}

/// The packet fields schedulers look at.
#[derive(Clone, Copy, Debug)]
pub struct RPacket {
    pub saddr: u32,
    pub sport: u16,
    pub daddr: u32,
    pub proto: u8,
}

/// One lblcr table entry: the dest set (newest first), set.lastmod, lastuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RSetEntry {
    pub set: Vec<usize>,
    pub lastmod: u64,
    pub lastuse: u64,
}

/// The reference model of a single service and its dests.
#[derive(Clone, Debug)]
pub struct RefModel {
    pub kind: SchedKind,
    pub sh_fallback: bool,
    pub sh_port: bool,
    pub overhead: Overhead,
    pub lblc_exp: u64,
    pub lblcr_exp: u64,
    pub dests: Vec<RDest>,
    pub list: Vec<usize>,
    trash: Vec<usize>,
    trash_timer: Option<u64>,
    pub now: u64,
    rr_cursor: Option<usize>,
    wrr_cl: Option<usize>,
    wrr_cw: i64,
    wrr_mw: i64,
    wrr_di: i64,
    dh_list: Vec<usize>,
    pub lblc: HashMap<u32, (usize, u64)>,
    pub lblcr: HashMap<u32, RSetEntry>,
    gc_counter: u64,
    gc_rover: usize,
    gc_next: u64,
}

/// Result of a reference management operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RResult {
    New(usize),
    Revived(usize),
    Done(usize),
    Exists,
    Missing,
    BadWeight,
    BadThreshold,
    ThresholdOrder,
}

const INT_MAX: u32 = 0x7FFF_FFFF;
const MAX_SIZE: usize = 16384;
const CAP: usize = MAX_SIZE * 3 / 2;

/// `hash_32` written out: multiply by the golden ratio, keep the low 32
/// bits, take the top `bits` of those.
fn golden_hash(v: u32, bits: u32) -> usize {
    let product = (u64::from(v) * 0x61C8_8647) % (1u64 << 32);
    (product >> (32 - bits)) as usize
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl RefModel {
    pub fn new(kind: SchedKind, overhead: Overhead, lblc_exp: u64, lblcr_exp: u64, now: u64) -> RefModel {
        let mut m = RefModel {
            kind,
            sh_fallback: false,
            sh_port: false,
            overhead,
            lblc_exp,
            lblcr_exp,
            dests: Vec::new(),
            list: Vec::new(),
            trash: Vec::new(),
            trash_timer: None,
            now,
            rr_cursor: None,
            wrr_cl: None,
            wrr_cw: 0,
            wrr_mw: 0,
            wrr_di: 1,
            dh_list: Vec::new(),
            lblc: HashMap::new(),
            lblcr: HashMap::new(),
            gc_counter: 1,
            gc_rover: 0,
            gc_next: 0,
        };
        m.bind_scheduler(kind);
        m
    }

    /// `init_service` for whatever scheduler is bound now.
    pub fn bind_scheduler(&mut self, kind: SchedKind) {
        self.kind = kind;
        self.rr_cursor = None;
        self.wrr_cl = None;
        self.wrr_recompute();
        self.wrr_cw = self.wrr_mw;
        self.dh_list = self.list.clone();
        self.lblc.clear();
        self.lblcr.clear();
        self.gc_counter = 1;
        self.gc_rover = 0;
        self.gc_next = self.now + 60 * SEC;
    }

    fn total(d: &RDest) -> u32 {
        d.active + d.inact
    }

    fn lower(d: &RDest) -> u32 {
        if d.l == 0 {
            d.u - d.u / 4
        } else {
            d.l
        }
    }

    fn oh(&self, i: usize) -> u64 {
        let d = &self.dests[i];
        let (a, n) = (u64::from(d.active), u64::from(d.inact));
        match self.overhead {
            Overhead::Current => a * 257 + n,
            Overhead::Classic => a * 256 + n,
        }
    }

    // ---- management ------------------------------------------------------

    fn check(weight: u32, u: u32, l: u32) -> Option<RResult> {
        if weight > INT_MAX {
            Some(RResult::BadWeight)
        } else if u > INT_MAX || l > INT_MAX {
            Some(RResult::BadThreshold)
        } else if l > u {
            Some(RResult::ThresholdOrder)
        } else {
            None
        }
    }

    fn configure(&mut self, i: usize, weight: u32, u: u32, l: u32) {
        let d = &mut self.dests[i];
        d.weight = weight;
        d.u = u;
        d.l = l;
        d.available = true;
        if u == 0 {
            d.overload = false;
        } else if Self::total(d) >= u {
            d.overload = true;
        } else if Self::total(d) < Self::lower(d) {
            d.overload = false;
        }
    }

    pub fn add(&mut self, addr: Ipv4Addr, port: u16, weight: u32, u: u32, l: u32) -> RResult {
        if let Some(e) = Self::check(weight, u, l) {
            return e;
        }
        if self.list.iter().any(|&i| self.dests[i].addr == addr && self.dests[i].port == port) {
            return RResult::Exists;
        }
        let trashed = self.trash.iter().position(|&i| self.dests[i].addr == addr && self.dests[i].port == port);
        let (i, result) = match trashed {
            Some(t) => {
                let i = self.trash.remove(t);
                self.dests[i].idle_since = None;
                (i, RResult::Revived(i))
            }
            None => {
                self.dests.push(RDest {
                    addr,
                    port,
                    weight: 0,
                    u: 0,
                    l: 0,
                    active: 0,
                    inact: 0,
                    persist: 0,
                    overload: false,
                    available: false,
                    conns_stat: 0,
                    freed: false,
                    idle_since: None,
                });
                (self.dests.len() - 1, RResult::New(self.dests.len() - 1))
            }
        };
        self.configure(i, weight, u, l);
        self.list.insert(0, i);
        // add_dest hooks
        match self.kind {
            SchedKind::Wrr => self.wrr_dest_changed(),
            SchedKind::Dh => self.dh_list = self.list.clone(),
            _ => {}
        }
        result
    }

    pub fn edit(&mut self, addr: Ipv4Addr, port: u16, weight: u32, u: u32, l: u32) -> RResult {
        if let Some(e) = Self::check(weight, u, l) {
            return e;
        }
        let Some(&i) = self.list.iter().find(|&&i| self.dests[i].addr == addr && self.dests[i].port == port) else {
            return RResult::Missing;
        };
        self.configure(i, weight, u, l);
        if self.kind == SchedKind::Wrr {
            self.wrr_dest_changed();
        }
        RResult::Done(i)
    }

    pub fn delete(&mut self, addr: Ipv4Addr, port: u16) -> RResult {
        let Some(pos) = self.list.iter().position(|&i| self.dests[i].addr == addr && self.dests[i].port == port) else {
            return RResult::Missing;
        };
        let i = self.list[pos];
        let before = if pos == 0 { None } else { Some(self.list[pos - 1]) };
        self.list.remove(pos);
        self.dests[i].available = false;
        match self.kind {
            SchedKind::Rr if self.rr_cursor == Some(i) => self.rr_cursor = before,
            SchedKind::Wrr => self.wrr_dest_changed(),
            SchedKind::Dh => self.dh_list = self.list.clone(),
            _ => {}
        }
        if self.trash.is_empty() {
            self.trash_timer = Some(self.now + 60 * SEC);
        }
        self.trash.push(i);
        self.dests[i].idle_since = None;
        RResult::Done(i)
    }

    // ---- accounting --------------------------------------------------------

    pub fn bind(&mut self, i: usize) {
        let d = &mut self.dests[i];
        d.inact += 1;
        d.conns_stat += 1;
        if d.u > 0 && Self::total(d) >= d.u {
            d.overload = true;
        }
    }

    pub fn activate(&mut self, i: usize) {
        self.dests[i].inact -= 1;
        self.dests[i].active += 1;
    }

    pub fn deactivate(&mut self, i: usize) {
        self.dests[i].active -= 1;
        self.dests[i].inact += 1;
    }

    pub fn unbind(&mut self, i: usize, active: bool) {
        let d = &mut self.dests[i];
        if active {
            d.active -= 1;
        } else {
            d.inact -= 1;
        }
        if d.u > 0 && Self::total(d) < Self::lower(d) {
            d.overload = false;
        }
    }

    pub fn template_bind(&mut self, i: usize) {
        self.dests[i].persist += 1;
    }

    pub fn template_unbind(&mut self, i: usize) {
        self.dests[i].persist -= 1;
    }

    // ---- time ----------------------------------------------------------------

    fn referenced(&self, i: usize) -> bool {
        let d = &self.dests[i];
        d.active + d.inact + d.persist > 0
            || (self.kind == SchedKind::Lblc && self.lblc.values().any(|&(x, _)| x == i))
            || (self.kind == SchedKind::Lblcr && self.lblcr.values().any(|e| e.set.contains(&i)))
    }

    pub fn advance(&mut self, now: u64) {
        loop {
            let gc = matches!(self.kind, SchedKind::Lblc | SchedKind::Lblcr).then_some(self.gc_next);
            let Some(t) = [self.trash_timer, gc].into_iter().flatten().min() else { break };
            if t > now {
                break;
            }
            self.now = t;
            if self.trash_timer == Some(t) {
                self.trash_tick(t);
            }
            if gc == Some(t) {
                self.gc_tick(t);
                self.gc_next = t + 60 * SEC;
            }
        }
        self.now = now;
    }

    fn trash_tick(&mut self, t: u64) {
        for i in self.trash.clone() {
            if self.referenced(i) {
                continue;
            }
            match self.dests[i].idle_since {
                None => self.dests[i].idle_since = Some(t),
                Some(s) if t >= s + 120 * SEC => {
                    self.dests[i].freed = true;
                    self.trash.retain(|&x| x != i);
                }
                Some(_) => {}
            }
        }
        self.trash_timer = if self.trash.is_empty() { None } else { Some(t + 60 * SEC) };
    }

    fn entry_count(&self) -> usize {
        if self.kind == SchedKind::Lblc {
            self.lblc.len()
        } else {
            self.lblcr.len()
        }
    }

    /// Deletes the entries at `addrs` (one bucket's) that are idle for
    /// 360 s or more; returns how many.
    fn expire_entries(&mut self, addrs: &[u32], now: u64) -> usize {
        let mut n = 0;
        for a in addrs {
            let lastuse = if self.kind == SchedKind::Lblc { self.lblc[a].1 } else { self.lblcr[a].lastuse };
            if now >= lastuse + 360 * SEC {
                self.lblc.remove(a);
                self.lblcr.remove(a);
                n += 1;
            }
        }
        n
    }

    fn gc_tick(&mut self, now: u64) {
        if self.gc_counter.is_multiple_of(30) {
            let exp = SEC * if self.kind == SchedKind::Lblc { self.lblc_exp } else { self.lblcr_exp };
            if self.kind == SchedKind::Lblc {
                self.lblc.retain(|_, &mut (_, lastuse)| now < lastuse + exp);
            } else {
                self.lblcr.retain(|_, e| now < e.lastuse + exp);
            }
            self.gc_counter = 1;
        } else if self.entry_count() <= MAX_SIZE {
            self.gc_counter += 1;
        } else {
            let mut goal = ((self.entry_count() - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2) as i64;
            // The entries of each bucket.
            let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); 1024];
            let addrs: Vec<u32> = if self.kind == SchedKind::Lblc {
                self.lblc.keys().copied().collect()
            } else {
                self.lblcr.keys().copied().collect()
            };
            for a in addrs {
                buckets[golden_hash(a, 10)].push(a);
            }
            let mut b = self.gc_rover;
            for _ in 0..1024 {
                b = (b + 1) % 1024;
                goal -= self.expire_entries(&buckets[b], now) as i64;
                if goal <= 0 {
                    break;
                }
            }
            self.gc_rover = b;
        }
    }

    // ---- scheduling ------------------------------------------------------------

    pub fn schedule(&mut self, p: RPacket, now: u64) -> Option<usize> {
        match self.kind {
            SchedKind::Rr => self.rr(),
            SchedKind::Wrr => self.wrr(),
            SchedKind::Lc => self.lc(),
            SchedKind::Wlc => self.wlc(),
            SchedKind::Lblc => self.lblc_schedule(p.daddr, now),
            SchedKind::Lblcr => self.lblcr_schedule(p.daddr, now),
            SchedKind::Dh => self.dh(p.daddr),
            SchedKind::Sh => self.sh(p),
        }
    }

    fn rr(&mut self) -> Option<usize> {
        let walk: Vec<usize> = match self.rr_cursor {
            None => self.list.clone(),
            Some(c) => {
                let p = self.list.iter().position(|&x| x == c).expect("rr cursor is listed");
                self.list[p + 1..].iter().chain(&self.list[..=p]).copied().collect()
            }
        };
        let pick = walk.into_iter().find(|&i| !self.dests[i].overload && self.dests[i].weight > 0)?;
        self.rr_cursor = Some(pick);
        Some(pick)
    }

    fn wrr_recompute(&mut self) {
        let positive: Vec<i64> =
            self.list.iter().map(|&i| i64::from(self.dests[i].weight)).filter(|&w| w > 0).collect();
        self.wrr_di = positive.iter().copied().reduce(gcd).unwrap_or(1);
        let max = self.list.iter().map(|&i| i64::from(self.dests[i].weight)).max().unwrap_or(0);
        self.wrr_mw = max - (self.wrr_di - 1);
    }

    fn wrr_dest_changed(&mut self) {
        self.wrr_cl = None;
        self.wrr_recompute();
        if self.wrr_cw > self.wrr_mw || self.wrr_cw == 0 {
            self.wrr_cw = self.wrr_mw;
        } else if self.wrr_di > 1 {
            self.wrr_cw = (self.wrr_cw / self.wrr_di) * self.wrr_di + 1;
        }
    }

    /// Spec 1.5 `schedule`, as a walk over positions (None = head).
    fn wrr(&mut self) -> Option<usize> {
        if self.wrr_mw == 0 {
            return None;
        }
        let last = self.wrr_cl;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        let mut pos: Option<usize> = self.wrr_cl;
        loop {
            // Step to the next position.
            let idx = match pos {
                None => 0,
                Some(d) => self.list.iter().position(|&x| x == d).expect("wrr cursor is listed") + 1,
            };
            if idx < self.list.len() {
                let d = self.list[idx];
                pos = Some(d);
                if !self.dests[d].overload && i64::from(self.dests[d].weight) >= self.wrr_cw {
                    self.wrr_cl = Some(d);
                    return Some(d);
                }
                if stop == Some(d) {
                    self.wrr_cl = Some(d);
                    return None;
                }
                continue;
            }
            // Reached the head.
            pos = None;
            self.wrr_cw -= self.wrr_di;
            if self.wrr_cw <= 0 {
                self.wrr_cw = self.wrr_mw;
                if last_pass || last.is_none() {
                    self.wrr_cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.wrr_cw <= self.wrr_di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    fn lc(&self) -> Option<usize> {
        let ok: Vec<usize> =
            self.list.iter().copied().filter(|&i| !self.dests[i].overload && self.dests[i].weight > 0).collect();
        let min = ok.iter().map(|&i| self.oh(i)).min()?;
        ok.into_iter().find(|&i| self.oh(i) == min)
    }

    /// "Minimises overhead/weight, earliest on ties", as a quadratic search
    /// over the non-OVERLOAD dests with weight > 0.
    fn wlc(&self) -> Option<usize> {
        let ok: Vec<usize> =
            self.list.iter().copied().filter(|&i| !self.dests[i].overload && self.dests[i].weight > 0).collect();
        // ratio(a) <= ratio(b)  <=>  oh(a) * w(b) <= oh(b) * w(a)
        let le = |a: usize, b: usize| {
            u128::from(self.oh(a)) * u128::from(self.dests[b].weight)
                <= u128::from(self.oh(b)) * u128::from(self.dests[a].weight)
        };
        ok.iter().copied().find(|&a| ok.iter().all(|&b| le(a, b)))
    }

    fn locality_overloaded(&self, i: usize) -> bool {
        let d = &self.dests[i];
        d.active > d.weight
            && self.list.iter().any(|&x| u64::from(self.dests[x].active) * 2 < u64::from(self.dests[x].weight))
    }

    fn lblc_schedule(&mut self, daddr: u32, now: u64) -> Option<usize> {
        if let Some(e) = self.lblc.get_mut(&daddr) {
            e.1 = now;
            let i = e.0;
            let d = &self.dests[i];
            if d.available && d.weight > 0 && !self.locality_overloaded(i) {
                return Some(i);
            }
        }
        let pick = self.wlc()?;
        match self.lblc.get(&daddr) {
            Some(&(i, _)) if i == pick => {}
            existing => {
                if existing.is_some() {
                    self.lblc.remove(&daddr);
                }
                if self.lblc.len() < CAP {
                    self.lblc.insert(daddr, (pick, now));
                }
            }
        }
        Some(pick)
    }

    fn weighted_gt(&self, a: usize, b: usize) -> bool {
        // oh(a) * w(b) > oh(b) * w(a)
        u128::from(self.oh(a)) * u128::from(self.dests[b].weight)
            > u128::from(self.oh(b)) * u128::from(self.dests[a].weight)
    }

    fn set_min(&self, set: &[usize]) -> Option<usize> {
        let start = set.iter().position(|&i| {
            let d = &self.dests[i];
            !d.overload && d.weight > 0 && d.available
        })?;
        let mut least = set[start];
        for &i in &set[start + 1..] {
            if self.dests[i].overload {
                continue;
            }
            if self.weighted_gt(least, i) && self.dests[i].available {
                least = i;
            }
        }
        Some(least)
    }

    fn set_max(&self, set: &[usize]) -> Option<usize> {
        let start = set.iter().position(|&i| self.dests[i].weight > 0)?;
        let mut most = set[start];
        for &i in &set[start + 1..] {
            // moh*w(d) < doh*w(most)
            if self.dests[i].weight > 0 && self.weighted_gt(i, most) {
                most = i;
            }
        }
        Some(most)
    }

    fn lblcr_schedule(&mut self, daddr: u32, now: u64) -> Option<usize> {
        if let Some(mut e) = self.lblcr.remove(&daddr) {
            e.lastuse = now;
            let dest = self.set_min(&e.set);
            if e.set.len() > 1 && now > e.lastmod + self.lblcr_exp * SEC {
                if let Some(m) = self.set_max(&e.set) {
                    e.set.retain(|&x| x != m);
                    e.lastmod = now;
                }
            }
            let result = match dest {
                Some(d) if !self.locality_overloaded(d) => Some(d),
                _ => {
                    let pick = self.wlc();
                    if let Some(p) = pick {
                        if !e.set.contains(&p) {
                            e.set.insert(0, p);
                            e.lastmod = now;
                        }
                    }
                    pick
                }
            };
            self.lblcr.insert(daddr, e);
            return result;
        }
        let pick = self.wlc()?;
        if self.lblcr.len() < CAP {
            self.lblcr.insert(daddr, RSetEntry { set: vec![pick], lastmod: now, lastuse: now });
        }
        Some(pick)
    }

    fn dh(&self, daddr: u32) -> Option<usize> {
        if self.dh_list.is_empty() {
            return None;
        }
        let b = golden_hash(daddr, 8);
        let i = self.dh_list[b % self.dh_list.len()];
        let d = &self.dests[i];
        (d.available && d.weight > 0 && !d.overload).then_some(i)
    }

    fn sh_table(&self) -> Vec<usize> {
        let mut table = Vec::new();
        let mut k = 0;
        while !self.list.is_empty() && table.len() < 256 {
            let i = self.list[k % self.list.len()];
            let take = (self.dests[i].weight.max(1) as usize).min(256 - table.len());
            table.extend(std::iter::repeat_n(i, take));
            k += 1;
        }
        table
    }

    fn sh(&self, p: RPacket) -> Option<usize> {
        let table = self.sh_table();
        if table.is_empty() {
            return None;
        }
        let port = if self.sh_port && [6, 17, 132].contains(&p.proto) { u32::from(p.sport) } else { 0 };
        let h = golden_hash(p.saddr.wrapping_add(port), 8);
        let usable = |i: usize| self.dests[i].weight > 0 && !self.dests[i].overload;
        if usable(table[h]) {
            return Some(table[h]);
        }
        if !self.sh_fallback {
            return None;
        }
        (0..256).map(|offset| table[((offset + h) % 256 + h) & 255]).find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::sched::{PacketInfo, Scheduler};
    use crate::ipvs::service::{
        DestConfig, DestId, IpvsConfig, IpvsError, Protocol, ServiceConfig, ServiceId, Services, SVC_F_SH_FALLBACK,
        SVC_F_SH_PORT,
    };
    use p4lite_compiler::rng::Rng;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    /// Knobs of one random run.
    #[derive(Clone, Copy, Debug)]
    struct Run {
        seed: u64,
        kind: SchedKind,
        overhead: Overhead,
        steps: usize,
        /// Size of the destination-address pool (lblc/lblcr/dh keys).
        daddrs: u32,
        lblc_exp: u64,
        lblcr_exp: u64,
        /// Allow switching schedulers mid-run.
        switch: bool,
    }

    struct Harness {
        rng: Rng,
        real: Services,
        id: ServiceId,
        model: RefModel,
        /// real id -> reference object (for live dests)
        ids: HashMap<DestId, usize>,
        /// open connections: (real, reference, active)
        conns: Vec<(DestId, usize, bool)>,
        templates: Vec<(DestId, usize)>,
        now: u64,
        run: Run,
        picks: u64,
        steps: u64,
    }

    fn weight(rng: &mut Rng) -> u32 {
        match rng.below(20) {
            0 => 0,
            1 => 100,
            2 => 65535,
            3 => 256,
            4 => 0x8000_0000, // rejected
            _ => rng.pick(&[1, 1, 2, 3, 4, 5, 6, 8, 10, 12]),
        }
    }

    fn thresholds(rng: &mut Rng) -> (u32, u32) {
        match rng.below(10) {
            0..=5 => (0, 0),
            6 => (5, 7), // rejected: l > u
            7 => (rng.below(6) as u32 + 1, 0),
            _ => {
                let u = rng.below(8) as u32 + 1;
                (u, rng.below(u64::from(u) + 1) as u32)
            }
        }
    }

    impl Harness {
        fn new(run: Run) -> Harness {
            let config =
                IpvsConfig { overhead: run.overhead, lblc_expiration: run.lblc_exp, lblcr_expiration: run.lblcr_exp };
            let mut real = Services::new(config);
            let now = 1000 * SEC;
            real.advance(now);
            let id = real.add_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, run.kind)).unwrap();
            let model = RefModel::new(run.kind, run.overhead, run.lblc_exp, run.lblcr_exp, now);
            Harness {
                rng: Rng::new(run.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
                real,
                id,
                model,
                ids: HashMap::new(),
                conns: Vec::new(),
                templates: Vec::new(),
                now,
                run,
                picks: 0,
                steps: 0,
            }
        }

        fn ctx(&self, what: &str) -> String {
            format!("{:?} t={} op={what}", self.run, self.now)
        }

        fn dest_key(&mut self) -> (Ipv4Addr, u16) {
            (Ipv4Addr::new(10, 0, 0, 1 + self.rng.below(6) as u8), self.rng.pick(&[80, 81]))
        }

        /// The reference object of a real id returned by add.
        fn map_added(&mut self, d: DestId, r: RResult, what: &str) {
            match r {
                RResult::Revived(i) => assert_eq!(self.ids.get(&d), Some(&i), "{}", self.ctx(what)),
                RResult::New(i) => {
                    if let Some(&old) = self.ids.get(&d) {
                        assert!(self.model.dests[old].freed, "id {d:?} reused while alive: {}", self.ctx(what));
                    }
                    self.ids.insert(d, i);
                }
                other => panic!("real added, reference said {other:?}: {}", self.ctx(what)),
            }
        }

        fn expect_err(&self, real: IpvsError, r: RResult, what: &str) {
            let want = match r {
                RResult::Exists => IpvsError::DestExists,
                RResult::Missing => IpvsError::NoSuchDest,
                RResult::BadWeight => IpvsError::WeightRange,
                RResult::BadThreshold => IpvsError::ThresholdTooLarge,
                RResult::ThresholdOrder => IpvsError::ThresholdRange,
                other => panic!("real failed with {real:?}, reference said {other:?}: {}", self.ctx(what)),
            };
            assert_eq!(real, want, "{}", self.ctx(what));
        }

        fn step(&mut self) {
            self.steps += 1;
            let op = self.rng.below(100);
            match op {
                0..=5 => {
                    let (addr, port) = self.dest_key();
                    let w = weight(&mut self.rng);
                    let (u, l) = thresholds(&mut self.rng);
                    let cfg = DestConfig { u_threshold: u, l_threshold: l, ..DestConfig::new(addr, port, w) };
                    let r = self.model.add(addr, port, w, u, l);
                    match self.real.add_dest(self.id, &cfg) {
                        Ok(d) => self.map_added(d, r, "add"),
                        Err(e) => self.expect_err(e, r, "add"),
                    }
                }
                6..=10 => {
                    let (addr, port) = self.dest_key();
                    let w = weight(&mut self.rng);
                    let (u, l) = thresholds(&mut self.rng);
                    let cfg = DestConfig { u_threshold: u, l_threshold: l, ..DestConfig::new(addr, port, w) };
                    let r = self.model.edit(addr, port, w, u, l);
                    match self.real.edit_dest(self.id, &cfg) {
                        Ok(d) => assert_eq!(r, RResult::Done(self.ids[&d]), "{}", self.ctx("edit")),
                        Err(e) => self.expect_err(e, r, "edit"),
                    }
                }
                11..=13 => {
                    let (addr, port) = self.dest_key();
                    let r = self.model.delete(addr, port);
                    match self.real.delete_dest(self.id, addr, port) {
                        Ok(d) => assert_eq!(r, RResult::Done(self.ids[&d]), "{}", self.ctx("delete")),
                        Err(e) => self.expect_err(e, r, "delete"),
                    }
                }
                14..=59 => self.schedule(),
                60..=67 => {
                    // activate / deactivate a random conn
                    if !self.conns.is_empty() {
                        let k = self.rng.below(self.conns.len() as u64) as usize;
                        let (d, i, active) = self.conns[k];
                        if active {
                            self.real.conn_deactivated(d);
                            self.model.deactivate(i);
                        } else {
                            self.real.conn_activated(d);
                            self.model.activate(i);
                        }
                        self.conns[k].2 = !active;
                    }
                }
                68..=77 => {
                    if self.rng.chance(10) && !self.conns.is_empty() {
                        // A dest drains: all its conns expire.
                        let (d, i, _) = self.conns[self.rng.below(self.conns.len() as u64) as usize];
                        for &(_, _, active) in self.conns.iter().filter(|c| c.0 == d) {
                            self.real.conn_unbound(d, active);
                            self.model.unbind(i, active);
                        }
                        self.conns.retain(|c| c.0 != d);
                    }
                    // Occasionally half of all conns expire at once.
                    let n = if self.rng.chance(3) { self.conns.len() / 2 } else { 1 };
                    for _ in 0..n.min(self.conns.len()) {
                        let k = self.rng.below(self.conns.len() as u64) as usize;
                        let (d, i, active) = self.conns.swap_remove(k);
                        self.real.conn_unbound(d, active);
                        self.model.unbind(i, active);
                    }
                }
                78..=80 => {
                    let listed = self.real.service(self.id).unwrap().dests().to_vec();
                    if !listed.is_empty() {
                        let d = self.rng.pick(&listed);
                        let i = self.ids[&d];
                        self.real.template_bound(d);
                        self.model.template_bind(i);
                        self.templates.push((d, i));
                    }
                }
                81..=82 => {
                    if !self.templates.is_empty() {
                        let k = self.rng.below(self.templates.len() as u64) as usize;
                        let (d, i) = self.templates.swap_remove(k);
                        self.real.template_unbound(d);
                        self.model.template_unbind(i);
                    }
                }
                83..=96 => {
                    // Seconds, plus a part of a second: the expiry
                    // boundaries are compared to the millisecond.
                    let dt =
                        SEC * match self.rng.below(50) {
                            0..=39 => self.rng.below(4),
                            40..=47 => 30 + self.rng.below(400),
                            _ => 3000 + self.rng.below(if self.run.lblc_exp > 10000 { 200_000 } else { 2000 }),
                        } + self.rng.below(SEC);
                    self.now += dt;
                    self.real.advance(self.now);
                    self.model.advance(self.now);
                }
                _ => {
                    // -E: new flags; sometimes a different scheduler.
                    let flags =
                        self.rng.pick(&[0, SVC_F_SH_FALLBACK, SVC_F_SH_PORT, SVC_F_SH_FALLBACK | SVC_F_SH_PORT]);
                    let kind = if self.run.switch && self.rng.chance(30) {
                        self.rng.pick(&SchedKind::ALL)
                    } else {
                        self.model.kind
                    };
                    let cfg = ServiceConfig { sched_flags: flags, ..ServiceConfig::new(Protocol::Tcp, VIP, 80, kind) };
                    self.real.edit_service(&cfg).unwrap();
                    if self.rng.chance(25) {
                        // `overhead classic|current` mid-run: the packed
                        // overheads must follow.
                        let overhead = self.rng.pick(&[Overhead::Current, Overhead::Classic]);
                        self.real.set_config(IpvsConfig { overhead, ..self.real.config() });
                        self.model.overhead = overhead;
                    }
                    self.model.sh_fallback = flags & SVC_F_SH_FALLBACK != 0;
                    self.model.sh_port = flags & SVC_F_SH_PORT != 0;
                    if kind != self.model.kind {
                        self.model.bind_scheduler(kind);
                    }
                }
            }
            self.compare();
        }

        fn schedule(&mut self) {
            let saddr = Ipv4Addr::new(203, 0, 113, self.rng.below(40) as u8);
            let daddr = Ipv4Addr::from(0x0808_0000 + self.rng.below(u64::from(self.run.daddrs)) as u32);
            let sport = 1024 + self.rng.below(8) as u16;
            let proto = self.rng.pick(&[6, 6, 17, 1]);
            let pkt = PacketInfo { saddr, sport, daddr, dport: 80, proto };
            let rpkt = RPacket { saddr: u32::from(saddr), sport, daddr: u32::from(daddr), proto };
            let real = self.real.schedule(self.id, &pkt, self.now);
            let model = self.model.schedule(rpkt, self.now);
            let real_obj = real.map(|d| self.ids[&d]);
            assert_eq!(real_obj, model, "pick differs: {}", self.ctx("schedule"));
            self.picks += u64::from(real.is_some());
            if let (Some(d), Some(i)) = (real, model) {
                // Now and then a burst, so overheads reach the near ties
                // (hundreds of inactive conns) where the formulas differ.
                let burst = if self.rng.chance(2) { 100 + self.rng.below(300) } else { 0 };
                for _ in 0..burst {
                    self.real.conn_bound(d);
                    self.real.count_conn(d);
                    self.model.bind(i);
                    let active = self.rng.chance(5);
                    if active {
                        self.real.conn_activated(d);
                        self.model.activate(i);
                    }
                    self.conns.push((d, i, active));
                }
                if self.rng.chance(70) {
                    self.real.conn_bound(d);
                    self.real.count_conn(d);
                    self.model.bind(i);
                    let active = self.rng.chance(40);
                    if active {
                        self.real.conn_activated(d);
                        self.model.activate(i);
                    }
                    self.conns.push((d, i, active));
                }
            }
        }

        fn compare(&self) {
            assert!(self.real.packed_in_sync(), "packed array out of sync: {}", self.ctx("compare"));
            let listed = self.real.service(self.id).unwrap().dests();
            let real_list: Vec<usize> = listed.iter().map(|d| self.ids[d]).collect();
            assert_eq!(real_list, self.model.list, "list order: {}", self.ctx("compare"));
            for (&d, &i) in &self.ids {
                let r = &self.model.dests[i];
                match self.real.try_dest(d) {
                    None => assert!(r.freed, "real freed {d:?} early: {}", self.ctx("compare")),
                    Some(_) if r.freed => panic!("reference freed {d:?}, real did not: {}", self.ctx("compare")),
                    Some(x) => {
                        let got = (x.addr, x.port, x.weight, x.u_threshold, x.l_threshold, x.available);
                        assert_eq!(got, (r.addr, r.port, r.weight, r.u, r.l, r.available), "{}", self.ctx("cfg"));
                        let got = (x.activeconns, x.inactconns, x.persistconns, x.overload, x.stats.conns);
                        let want = (r.active, r.inact, r.persist, r.overload, r.conns_stat);
                        assert_eq!(got, want, "counters of {}: {}", x.addr, self.ctx("compare"));
                    }
                }
            }
            let real_trash: Vec<usize> = self.real.trash().iter().map(|d| self.ids[d]).collect();
            let mut model_trash = self.model.trash.clone();
            model_trash.reverse(); // the real trash is newest first
            assert_eq!(real_trash, model_trash, "trash: {}", self.ctx("compare"));
            // Whole-table comparisons are costly for big tables: sample them.
            if self.steps.is_multiple_of(32) || self.model.lblc.len() + self.model.lblcr.len() < 32 {
                self.compare_tables();
            }
        }

        fn compare_tables(&self) {
            match self.real.service(self.id).unwrap().sched_state() {
                Scheduler::Lblc(l) => {
                    let got: HashMap<u32, (usize, u64)> =
                        l.table().iter().map(|e| (e.addr, (self.ids[&e.val], e.lastuse))).collect();
                    assert_eq!(got, self.model.lblc, "lblc table: {}", self.ctx("compare"));
                    assert_eq!(
                        l.table().gc_state(),
                        (self.model.gc_counter as u32, self.model.gc_rover, self.model.gc_next)
                    );
                }
                Scheduler::Lblcr(l) => {
                    let got: HashMap<u32, RSetEntry> = l
                        .table()
                        .iter()
                        .map(|e| {
                            let set = e.val.members.iter().map(|d| self.ids[d]).collect();
                            (e.addr, RSetEntry { set, lastmod: e.val.lastmod, lastuse: e.lastuse })
                        })
                        .collect();
                    assert_eq!(got, self.model.lblcr, "lblcr table: {}", self.ctx("compare"));
                    assert_eq!(
                        l.table().gc_state(),
                        (self.model.gc_counter as u32, self.model.gc_rover, self.model.gc_next)
                    );
                }
                _ => {}
            }
        }
    }

    fn run(run: Run) -> u64 {
        let mut h = Harness::new(run);
        for _ in 0..run.steps {
            h.step();
        }
        h.picks
    }

    #[test]
    fn random_sequences_match_reference() {
        let mut picks = 0;
        for seed in 1..=6u64 {
            for kind in SchedKind::ALL {
                for overhead in [Overhead::Current, Overhead::Classic] {
                    let short = seed % 2 == 0;
                    picks += run(Run {
                        seed: seed * 1000 + kind as u64 * 10 + overhead as u64,
                        kind,
                        overhead,
                        steps: 2500,
                        daddrs: [4, 24, 300][seed as usize % 3],
                        lblc_exp: if short { 600 } else { 86400 },
                        lblcr_exp: if short { 200 } else { 86400 },
                        switch: false,
                    });
                }
            }
        }
        // The runs must actually schedule a lot, not just fail.
        assert!(picks > 100_000, "only {picks} successful picks");
    }

    #[test]
    fn random_sequences_with_scheduler_switches() {
        for seed in 1..=8u64 {
            run(Run {
                seed: 77 + seed,
                kind: SchedKind::ALL[seed as usize % 8],
                overhead: if seed % 2 == 0 { Overhead::Current } else { Overhead::Classic },
                steps: 4000,
                daddrs: 12,
                lblc_exp: 900,
                lblcr_exp: 300,
                switch: true,
            });
        }
    }

    /// Enough distinct destination addresses to push lblc/lblcr past
    /// `max_size` (16384) and into the creation cap (24576), so the
    /// goal-limited GC with its rover and the cap are compared too.
    #[test]
    fn big_locality_tables_match_reference() {
        for kind in [SchedKind::Lblc, SchedKind::Lblcr] {
            let mut h = Harness::new(Run {
                seed: 5,
                kind,
                overhead: Overhead::Current,
                steps: 0,
                daddrs: 30000,
                lblc_exp: 86400,
                lblcr_exp: 86400,
                switch: false,
            });
            for (n, w) in [(1, 3), (2, 1), (3, 2)] {
                let addr = Ipv4Addr::new(10, 0, 0, n);
                let r = h.model.add(addr, 80, w, 0, 0);
                let d = h.real.add_dest(h.id, &DestConfig::new(addr, 80, w)).unwrap();
                h.map_added(d, r, "add");
            }
            // Past the cap in one go, then waves that refresh part of the
            // old addresses and add new ones, so entries have varied ages.
            let mut seen_cap = false;
            let schedule = |h: &mut Harness, n: u32| {
                let daddr = Ipv4Addr::from(0x0A80_0000 + n);
                let pkt = PacketInfo { saddr: VIP, sport: 1, daddr, dport: 80, proto: 6 };
                let rp = RPacket { saddr: u32::from(VIP), sport: 1, daddr: u32::from(daddr), proto: 6 };
                let real = h.real.schedule(h.id, &pkt, h.now).map(|d| h.ids[&d]);
                assert_eq!(real, h.model.schedule(rp, h.now));
            };
            for n in 0..26000 {
                schedule(&mut h, n);
            }
            seen_cap |= h.model.entry_count() == CAP;
            for wave in 0..12u32 {
                for k in 0..1500u32 {
                    // Every 7th old address is seen again; new ones keep coming.
                    schedule(&mut h, (wave * 1500 + k) * 7 % 26000);
                    schedule(&mut h, 26000 + wave * 1500 + k);
                }
                h.now += 100 * SEC;
                h.real.advance(h.now);
                h.model.advance(h.now);
                h.compare_tables();
            }
            assert!(seen_cap, "{kind}: the creation cap was reached");
            // Let the over-size GC evict in several goal-limited rounds.
            for _ in 0..40 {
                h.now += 60 * SEC;
                h.real.advance(h.now);
                h.model.advance(h.now);
                h.compare_tables();
            }
            assert!(h.model.entry_count() <= MAX_SIZE, "{kind}: GC shrank the table");
        }
    }

    #[test]
    fn reference_model_agrees_with_vectors() {
        // Sanity of the model itself on two spec vectors (V5 and V14).
        let mut m = RefModel::new(SchedKind::Wrr, Overhead::Current, 86400, 86400, 0);
        for (n, w) in [(3, 2), (2, 3), (1, 4)] {
            m.add(Ipv4Addr::new(10, 0, 0, n), 80, w, 0, 0);
        }
        let p = RPacket { saddr: 0, sport: 0, daddr: 0, proto: 6 };
        // Objects were created C, B, A.
        let names: String = (0..12).map(|_| ['C', 'B', 'A'][m.schedule(p, 0).unwrap()]).collect();
        assert_eq!(names, "ABCAABABCABC");
        let mut m = RefModel::new(SchedKind::Sh, Overhead::Current, 86400, 86400, 0);
        for n in [3, 2, 1] {
            m.add(Ipv4Addr::new(10, 0, 0, n), 80, 1, 0, 0);
        }
        let p = RPacket { saddr: u32::from(Ipv4Addr::new(10, 0, 0, 1)), sport: 0, daddr: 0, proto: 6 };
        assert_eq!(m.schedule(p, 0), Some(2)); // A
        m.edit(Ipv4Addr::new(10, 0, 0, 1), 80, 0, 0, 0);
        assert_eq!(m.schedule(p, 0), None);
        m.sh_fallback = true;
        assert_eq!(m.schedule(p, 0), Some(1)); // B
    }
}
