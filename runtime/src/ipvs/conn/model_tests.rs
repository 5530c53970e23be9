//! Randomized comparison of [`ConnTable`] against a naive model.
//!
//! The model keeps every entry in a `BTreeMap` with absolute millisecond
//! deadlines and finds everything by linear scans: the due entry (smallest
//! deadline, conns before templates), the lookup match (newest hashed
//! first), the eviction victim (least recently armed of its class). It
//! shares only the TCP transition function (tested on its own in `tcp.rs`)
//! and the public helper functions with the table.
//!
//! A deterministic PRNG drives both through the kernel's packet flow
//! (lookup, persistence, scheduling, insert) with dest deletions, weight
//! changes, flushes, timeout and sysctl changes, table limits and time gaps
//! from milliseconds to weeks; after every step the returned values, the
//! whole table contents, the dest counters and all statistics must agree.

use std::collections::BTreeMap;

use p4lite_compiler::rng::Rng;

use super::tcp::flags::{ACK, FIN, PSH, RST, SYN};
use super::tcp::{self, Direction, TcpState};
use super::*;

const MS: u64 = 1_000_000;

// ---- dest accounting mock -------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct MockDest {
    active: i64,
    inactive: i64,
    persist: i64,
    available: bool,
    weight: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Mock {
    d: Vec<MockDest>,
}

impl DestAccounting for Mock {
    fn conn_bound(&mut self, d: DestId) {
        self.d[d.0 as usize].inactive += 1;
    }
    fn conn_activated(&mut self, d: DestId) {
        let x = &mut self.d[d.0 as usize];
        x.inactive -= 1;
        x.active += 1;
    }
    fn conn_deactivated(&mut self, d: DestId) {
        let x = &mut self.d[d.0 as usize];
        x.active -= 1;
        x.inactive += 1;
    }
    fn conn_unbound(&mut self, d: DestId, active: bool) {
        let x = &mut self.d[d.0 as usize];
        if active {
            x.active -= 1;
        } else {
            x.inactive -= 1;
        }
    }
    fn template_bound(&mut self, d: DestId) {
        self.d[d.0 as usize].persist += 1;
    }
    fn template_unbound(&mut self, d: DestId) {
        self.d[d.0 as usize].persist -= 1;
    }
    fn dest_available(&self, d: DestId) -> bool {
        self.d[d.0 as usize].available
    }
    fn dest_weight(&self, d: DestId) -> u32 {
        self.d[d.0 as usize].weight
    }
}

// ---- id-free snapshots ----------------------------------------------------------

/// A template as a conn refers to it.
type TKey = (u8, u32, u32, u16, u16, Option<u32>, u64);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Snap {
    proto: u8,
    caddr: u32,
    cport: u16,
    vaddr: u32,
    vport: u16,
    daddr: u32,
    dport: u16,
    flags: u16,
    state: u8,
    dest: Option<u32>,
    control: Option<TKey>,
    n_control: u32,
    timeout_s: u32,
    expires_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum In {
    Hit(Snap),
    Miss(Miss),
    Drop(Snap),
}

/// Operations both implementations offer; handles are their own ids.
trait Table {
    fn lookup_in(&mut self, h: &mut Mock, t: &Tuple, f: u8, now: u64) -> In;
    fn lookup_out(&mut self, h: &mut Mock, t: &Tuple, f: u8, now: u64) -> Option<Snap>;
    fn template_lookup(&mut self, h: &mut Mock, k: &TemplateKey, now: u64) -> Option<(Snap, u32)>;
    #[allow(clippy::too_many_arguments)]
    fn template_insert(
        &mut self,
        h: &mut Mock,
        k: &TemplateKey,
        daddr: u32,
        dport: u16,
        d: DestId,
        fwd: FwdMethod,
        timeout: u32,
        now: u64,
    ) -> Result<(Snap, u32), InsertError>;
    fn insert(&mut self, h: &mut Mock, c: &NewConn, f: u8, now: u64) -> Result<Snap, InsertError>;
    fn expire(&mut self, h: &mut Mock, now: u64);
    fn flush(&mut self, h: &mut Mock, now: u64);
    fn set_config(&mut self, cfg: ConnConfig);
    fn set_timeouts(&mut self, tcp: u32, fin: u32, udp: u32);
    fn may_create(&self, proto: u8, f: u8) -> bool;
    fn snapshot(&self) -> Vec<Snap>;
    fn size(&self) -> usize;
    fn counters(&self) -> ConnStats;
}

// ---- the real table behind the trait ----------------------------------------------

impl ConnTable {
    fn snap(&self, c: &Conn) -> Snap {
        let control = c.control.and_then(|t| self.get(t)).map(|t| tkey(&t));
        Snap {
            proto: c.proto,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            flags: c.flags & !flag::HASHED,
            state: c.state,
            dest: c.dest.map(|d| d.0),
            control,
            n_control: c.n_control,
            timeout_s: c.timeout_s,
            expires_ms: c.expires_ms,
        }
    }
}

fn tkey(t: &Conn) -> TKey {
    (t.proto, t.caddr, t.vaddr, t.vport, t.dport, t.dest.map(|d| d.0), t.expires_ms)
}

impl Table for ConnTable {
    fn lookup_in(&mut self, h: &mut Mock, t: &Tuple, f: u8, now: u64) -> In {
        // `lookup_in_brief` (the data path's variant) on copies: the same
        // outcome, fields and effects on the table and the dest counters.
        let (mut brief_table, mut brief_h) = (self.clone(), h.clone());
        let brief = brief_table.lookup_in_brief(&mut brief_h, t, f, now);
        let r = ConnTable::lookup_in(self, h, t, f, now);
        let same = match (&r, brief) {
            (InLookup::Hit(c), InBrief::Hit(b)) => {
                b == HitBrief { fwd: c.fwd(), daddr: c.daddr, dport: c.dport, dest: c.dest }
            }
            (InLookup::Miss(m), InBrief::Miss(n)) => *m == n,
            (InLookup::Drop(_), InBrief::Drop) => true,
            _ => false,
        };
        assert!(same, "lookup_in {r:?} vs lookup_in_brief {brief:?}");
        assert_eq!(Table::snapshot(&brief_table), Table::snapshot(self));
        assert_eq!(brief_table.stats(), self.stats());
        assert_eq!(&brief_h, h);
        match r {
            InLookup::Hit(c) => In::Hit(self.snap(&c)),
            InLookup::Miss(m) => In::Miss(m),
            InLookup::Drop(c) => In::Drop(self.snap(&c)),
        }
    }
    fn lookup_out(&mut self, h: &mut Mock, t: &Tuple, f: u8, now: u64) -> Option<Snap> {
        ConnTable::lookup_out(self, h, t, f, now).map(|c| self.snap(&c))
    }
    fn template_lookup(&mut self, h: &mut Mock, k: &TemplateKey, now: u64) -> Option<(Snap, u32)> {
        ConnTable::template_lookup(self, h, k, now).map(|c| (self.snap(&c), c.id.0))
    }
    fn template_insert(
        &mut self,
        h: &mut Mock,
        k: &TemplateKey,
        daddr: u32,
        dport: u16,
        d: DestId,
        fwd: FwdMethod,
        timeout: u32,
        now: u64,
    ) -> Result<(Snap, u32), InsertError> {
        ConnTable::template_insert(self, h, k, daddr, dport, d, fwd, timeout, now).map(|c| (self.snap(&c), c.id.0))
    }
    fn insert(&mut self, h: &mut Mock, c: &NewConn, f: u8, now: u64) -> Result<Snap, InsertError> {
        ConnTable::insert(self, h, c, f, now).map(|c| self.snap(&c))
    }
    fn expire(&mut self, h: &mut Mock, now: u64) {
        ConnTable::expire(self, h, now)
    }
    fn flush(&mut self, h: &mut Mock, now: u64) {
        self.flush_unavailable(h, now)
    }
    fn set_config(&mut self, cfg: ConnConfig) {
        ConnTable::set_config(self, cfg)
    }
    fn set_timeouts(&mut self, tcp: u32, fin: u32, udp: u32) {
        ConnTable::set_timeouts(self, tcp, fin, udp).unwrap_or(())
    }
    fn may_create(&self, proto: u8, f: u8) -> bool {
        ConnTable::may_create(self, proto, f)
    }
    fn snapshot(&self) -> Vec<Snap> {
        let mut v: Vec<Snap> = self.iter().map(|c| self.snap(&c)).collect();
        v.sort();
        v
    }
    fn size(&self) -> usize {
        self.len()
    }
    fn counters(&self) -> ConnStats {
        *self.stats()
    }
}

// ---- the naive model ------------------------------------------------------------------

#[derive(Clone, Debug)]
struct MEntry {
    proto: u8,
    caddr: u32,
    cport: u16,
    vaddr: u32,
    vport: u16,
    daddr: u32,
    dport: u16,
    flags: u16,
    state: u8,
    dest: u32,
    template: bool,
    control: Option<usize>,
    n_control: u32,
    timeout_s: u32,
    expires: u64,
    armed: u64,
    hashed: bool,
    hseq: u64,
}

#[derive(Clone, Debug)]
struct Model {
    e: BTreeMap<usize, MEntry>,
    next: usize,
    hseq: u64,
    cfg: ConnConfig,
    doomed: Vec<usize>,
    now: u64,
    st: ConnStats,
}

impl Model {
    fn new(cfg: ConnConfig) -> Model {
        Model { e: BTreeMap::new(), next: 0, hseq: 0, cfg, doomed: Vec::new(), now: 0, st: ConnStats::default() }
    }

    fn msnap(&self, id: usize) -> Snap {
        let x = &self.e[&id];
        Snap {
            proto: x.proto,
            caddr: x.caddr,
            cport: x.cport,
            vaddr: x.vaddr,
            vport: x.vport,
            daddr: x.daddr,
            dport: x.dport,
            flags: x.flags,
            state: x.state,
            dest: Some(x.dest),
            control: x.control.map(|t| {
                let t = &self.e[&t];
                (t.proto, t.caddr, t.vaddr, t.vport, t.dport, Some(t.dest), t.expires)
            }),
            n_control: x.n_control,
            timeout_s: x.timeout_s,
            expires_ms: x.expires,
        }
    }

    fn advance(&mut self, h: &mut Mock, now_ns: u64, reap: bool) {
        self.now = self.now.max(now_ns / MS);
        if reap {
            self.reap(h);
        }
        loop {
            let due = self
                .e
                .iter()
                .filter(|(_, x)| x.expires <= self.now)
                .min_by_key(|(id, x)| (x.expires, x.template, **id))
                .map(|(id, _)| *id);
            let Some(id) = due else { break };
            let x = self.e.get_mut(&id).unwrap();
            if x.template && x.n_control > 0 {
                x.expires += 60_000;
                x.timeout_s = 60;
                self.st.postponed += 1;
                continue;
            }
            self.doomed.retain(|&d| d != id);
            self.remove(h, id, 'x', usize::MAX);
        }
    }

    fn reap(&mut self, h: &mut Mock) {
        for id in std::mem::take(&mut self.doomed) {
            self.remove(h, id, 'x', usize::MAX);
        }
    }

    /// `how`: 'x' expired, 'e' evicted, 'f' flushed.
    fn remove(&mut self, h: &mut Mock, id: usize, how: char, protect: usize) {
        let x = self.e.remove(&id).unwrap();
        match how {
            'x' => self.st.expired += 1,
            'f' => self.st.flushed += 1,
            _ => {}
        }
        if x.template {
            h.template_unbound(DestId(x.dest));
            return;
        }
        if let Some(t) = x.control {
            let tpl = self.e.get_mut(&t).unwrap();
            tpl.n_control -= 1;
            if how == 'e' && tpl.n_control == 0 && tpl.state & TEMPLATE_ASSURED == 0 && t != protect {
                self.st.evicted_templates += 1;
                self.remove(h, t, 'e', protect);
            }
        }
        h.conn_unbound(DestId(x.dest), x.flags & flag::INACTIVE == 0);
    }

    fn find(&self, pred: impl Fn(&MEntry) -> bool) -> Option<usize> {
        self.e.iter().filter(|(_, x)| x.hashed && pred(x)).max_by_key(|(_, x)| x.hseq).map(|(id, _)| *id)
    }

    fn transition(&mut self, h: &mut Mock, id: usize, dir: Direction, f: u8) {
        let secure = self.cfg.secure_tcp;
        let now = self.now;
        let x = self.e.get_mut(&id).unwrap();
        let mut assure = false;
        let timeout = if x.proto == PROTO_TCP {
            let mut d = dir;
            if x.flags & flag::NOOUTPUT != 0 {
                if dir == Direction::Output {
                    x.flags &= !flag::NOOUTPUT;
                } else {
                    d = Direction::InputOnly;
                }
            }
            let old = TcpState::from_u8(x.state).unwrap();
            let new = tcp::next_state(old, d, f, secure);
            if new != old {
                let inactive = x.flags & flag::INACTIVE != 0;
                if !inactive && !new.is_active() {
                    h.conn_deactivated(DestId(x.dest));
                    x.flags |= flag::INACTIVE;
                } else if inactive && new.is_active() {
                    h.conn_activated(DestId(x.dest));
                    x.flags &= !flag::INACTIVE;
                }
                assure = new == TcpState::Established;
            }
            x.state = new as u8;
            self.cfg.tcp_timeouts[new as usize]
        } else {
            assure = dir == Direction::Output;
            self.cfg.udp_timeout
        };
        x.timeout_s = timeout;
        x.expires = now + u64::from(timeout) * 1000;
        x.armed = now;
        if let Some(t) = x.control.filter(|_| assure) {
            self.e.get_mut(&t).unwrap().state |= TEMPLATE_ASSURED;
        }
    }

    fn rearm_template(&mut self, t: usize) {
        let now = self.now;
        let x = self.e.get_mut(&t).unwrap();
        x.expires = now + u64::from(x.timeout_s) * 1000;
    }

    fn make_room(&mut self, h: &mut Mock, protect: usize) -> bool {
        let max = self.cfg.max_conns as usize;
        if max == 0 || self.e.len() < max {
            return true;
        }
        self.reap(h);
        while self.e.len() >= max {
            let oldest = |est: bool| {
                self.e
                    .iter()
                    .filter(|(_, x)| {
                        !x.template && (x.proto == PROTO_TCP && x.state == TcpState::Established as u8) == est
                    })
                    .min_by_key(|(_, x)| x.armed)
                    .map(|(id, _)| *id)
            };
            let victim = match oldest(false) {
                Some(id) => Some((id, false)),
                None if self.cfg.evict_established => oldest(true).map(|id| (id, true)),
                None => None,
            };
            let Some((id, est)) = victim else { return false };
            if est {
                self.st.evicted_established += 1;
            } else {
                self.st.evicted_transient += 1;
            }
            self.remove(h, id, 'e', protect);
        }
        true
    }

    fn add(&mut self, mut x: MEntry) -> usize {
        self.hseq += 1;
        x.hseq = self.hseq;
        self.next += 1;
        self.e.insert(self.next, x);
        self.next
    }
}

impl Table for Model {
    fn lookup_in(&mut self, h: &mut Mock, t: &Tuple, f: u8, now: u64) -> In {
        self.advance(h, now, true);
        self.st.lookups += 1;
        let found = if t.sport == 0 {
            None
        } else {
            self.find(|x| {
                !x.template
                    && x.proto == t.proto
                    && (x.caddr, x.cport, x.vaddr, x.vport) == (t.saddr, t.sport, t.daddr, t.dport)
            })
        };
        let Some(id) = found else {
            self.st.misses += 1;
            return In::Miss(Miss::NotFound);
        };
        let x = self.e[&id].clone();
        if t.proto == PROTO_TCP && f & SYN != 0 {
            let quiesced = self.cfg.expire_nodest_conn && h.dest_weight(DestId(x.dest)) == 0;
            let st = TcpState::from_u8(x.state).unwrap();
            let expected = self.cfg.conn_reuse_mode != 0
                && x.control.is_none()
                && (st == TcpState::TimeWait
                    || st == TcpState::Close
                    || (self.cfg.conn_reuse_mode & 2 != 0 && st == TcpState::FinWait && x.flags & flag::NOOUTPUT != 0));
            if quiesced || expected {
                self.e.get_mut(&id).unwrap().hashed = false;
                self.doomed.push(id);
                self.st.misses += 1;
                if quiesced {
                    self.st.nodest_expired += 1;
                    return In::Miss(Miss::DestQuiesced);
                }
                self.st.reused += 1;
                return In::Miss(Miss::PortReuse);
            }
        }
        if !h.dest_available(DestId(x.dest)) {
            if self.cfg.expire_nodest_conn {
                self.e.get_mut(&id).unwrap().hashed = false;
                self.doomed.push(id);
                self.st.misses += 1;
                self.st.nodest_expired += 1;
                return In::Miss(Miss::DestUnavailable);
            }
            self.st.hits += 1;
            self.st.nodest_dropped += 1;
            return In::Drop(self.msnap(id));
        }
        self.st.hits += 1;
        self.transition(h, id, Direction::Input, f);
        In::Hit(self.msnap(id))
    }

    fn lookup_out(&mut self, h: &mut Mock, t: &Tuple, f: u8, now: u64) -> Option<Snap> {
        self.advance(h, now, true);
        self.st.lookups += 1;
        let found = self.find(|x| {
            let src = if x.flags & flag::FWD_MASK == flag::MASQ { (x.daddr, x.dport) } else { (x.vaddr, x.vport) };
            !x.template && x.proto == t.proto && (x.caddr, x.cport) == (t.daddr, t.dport) && src == (t.saddr, t.sport)
        });
        let Some(id) = found else {
            self.st.misses += 1;
            return None;
        };
        self.st.hits += 1;
        self.transition(h, id, Direction::Output, f);
        Some(self.msnap(id))
    }

    fn template_lookup(&mut self, h: &mut Mock, k: &TemplateKey, now: u64) -> Option<(Snap, u32)> {
        self.advance(h, now, false);
        self.st.template_lookups += 1;
        let id = self.find(|x| {
            x.template
                && x.proto == k.proto
                && x.caddr == k.caddr
                && x.cport == 0
                && x.vaddr == k.vaddr
                && x.vport == k.vport
        })?;
        let d = DestId(self.e[&id].dest);
        if !h.dest_available(d) || (self.cfg.expire_quiescent_template && h.dest_weight(d) == 0) {
            if self.e[&id].vport != 0xFFFF {
                self.hseq += 1;
                let x = self.e.get_mut(&id).unwrap();
                x.vport = 0xFFFF;
                x.dport = 0xFFFF;
                x.hseq = self.hseq;
                self.st.templates_invalidated += 1;
            }
            return None;
        }
        self.st.template_hits += 1;
        Some((self.msnap(id), id as u32))
    }

    fn template_insert(
        &mut self,
        h: &mut Mock,
        k: &TemplateKey,
        daddr: u32,
        dport: u16,
        d: DestId,
        fwd: FwdMethod,
        timeout: u32,
        now: u64,
    ) -> Result<(Snap, u32), InsertError> {
        self.advance(h, now, false);
        if !self.make_room(h, usize::MAX) {
            self.st.refused += 1;
            return Err(InsertError::Full);
        }
        let mut flags = fwd_bits(fwd) | flag::INACTIVE | flag::TEMPLATE;
        if fwd != FwdMethod::Masq {
            flags |= flag::NOOUTPUT;
        }
        let timeout = timeout.min(MAX_TIMEOUT_S);
        let id = self.add(MEntry {
            proto: k.proto,
            caddr: k.caddr,
            cport: 0,
            vaddr: k.vaddr,
            vport: k.vport,
            daddr,
            dport,
            flags,
            state: 0,
            dest: d.0,
            template: true,
            control: None,
            n_control: 0,
            timeout_s: timeout,
            expires: self.now + u64::from(timeout) * 1000,
            armed: self.now,
            hashed: true,
            hseq: 0,
        });
        h.template_bound(d);
        self.st.templates += 1;
        Ok((self.msnap(id), id as u32))
    }

    fn insert(&mut self, h: &mut Mock, c: &NewConn, f: u8, now: u64) -> Result<Snap, InsertError> {
        self.advance(h, now, false);
        let ctl = match c.control {
            None => None,
            Some(ConnId(t)) if self.e.get(&(t as usize)).is_some_and(|x| x.template) => Some(t as usize),
            Some(_) => return Err(InsertError::NoSuchTemplate),
        };
        let one_packet = c.one_packet && c.proto == PROTO_UDP;
        if !one_packet && !self.make_room(h, ctl.unwrap_or(usize::MAX)) {
            self.st.refused += 1;
            if let Some(t) = ctl {
                self.rearm_template(t);
            }
            self.reap(h);
            return Err(InsertError::Full);
        }
        let mut flags = fwd_bits(c.fwd) | flag::INACTIVE;
        if c.fwd != FwdMethod::Masq {
            flags |= flag::NOOUTPUT;
        }
        h.conn_bound(c.dest);
        self.st.inserts += 1;
        if one_packet {
            if let Some(t) = ctl {
                self.rearm_template(t);
            }
            h.conn_unbound(c.dest, false);
            self.st.one_packet += 1;
            self.reap(h);
            return Ok(Snap {
                proto: c.proto,
                caddr: c.caddr,
                cport: c.cport,
                vaddr: c.vaddr,
                vport: c.vport,
                daddr: c.daddr,
                dport: c.dport,
                flags: flags | flag::ONE_PACKET,
                state: 0,
                dest: Some(c.dest.0),
                control: ctl.map(|t| {
                    let t = &self.e[&t];
                    (t.proto, t.caddr, t.vaddr, t.vport, t.dport, Some(t.dest), t.expires)
                }),
                n_control: 0,
                timeout_s: self.cfg.udp_timeout,
                expires_ms: self.now,
            });
        }
        let id = self.add(MEntry {
            proto: c.proto,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            flags,
            state: 0,
            dest: c.dest.0,
            template: false,
            control: ctl,
            n_control: 0,
            timeout_s: INITIAL_TIMEOUT,
            expires: self.now + u64::from(INITIAL_TIMEOUT) * 1000,
            armed: self.now,
            hashed: true,
            hseq: 0,
        });
        if let Some(t) = ctl {
            self.e.get_mut(&t).unwrap().n_control += 1;
            self.rearm_template(t);
        }
        self.transition(h, id, Direction::Input, f);
        self.reap(h);
        Ok(self.msnap(id))
    }

    fn expire(&mut self, h: &mut Mock, now: u64) {
        self.advance(h, now, true);
    }

    fn flush(&mut self, h: &mut Mock, now: u64) {
        self.advance(h, now, true);
        for templates in [false, true] {
            let victims: Vec<usize> = self
                .e
                .iter()
                .filter(|(_, x)| {
                    x.template == templates && !h.dest_available(DestId(x.dest)) && !(templates && x.n_control > 0)
                })
                .map(|(id, _)| *id)
                .collect();
            for id in victims {
                self.remove(h, id, 'f', usize::MAX);
            }
        }
    }

    fn set_config(&mut self, cfg: ConnConfig) {
        self.cfg = cfg;
    }

    fn set_timeouts(&mut self, tcp: u32, fin: u32, udp: u32) {
        if tcp != 0 {
            self.cfg.tcp_timeouts[TcpState::Established as usize] = tcp;
        }
        if fin != 0 {
            self.cfg.tcp_timeouts[TcpState::FinWait as usize] = fin;
        }
        if udp != 0 {
            self.cfg.udp_timeout = udp;
        }
    }

    fn may_create(&self, proto: u8, f: u8) -> bool {
        match proto {
            PROTO_TCP => f & RST == 0 && (f & SYN != 0 || self.cfg.sloppy_tcp),
            PROTO_UDP => true,
            _ => false,
        }
    }

    fn snapshot(&self) -> Vec<Snap> {
        let mut v: Vec<Snap> = self.e.iter().filter(|(_, x)| x.hashed).map(|(id, _)| self.msnap(*id)).collect();
        v.sort();
        v
    }

    fn size(&self) -> usize {
        self.e.len()
    }

    fn counters(&self) -> ConnStats {
        self.st
    }
}

// ---- the world both run in --------------------------------------------------------------

struct Svc {
    proto: u8,
    vaddr: u32,
    port: u16,
    persistent: Option<u32>,
    netmask: u32,
    one_packet: bool,
    dests: Vec<u32>,
}

struct DestDef {
    addr: u32,
    port: u16,
    fwd: FwdMethod,
}

struct World {
    svcs: Vec<Svc>,
    dests: Vec<DestDef>,
    cursor: Vec<usize>,
}

const CLIENTS: [u32; 4] = [0xcb00_7107, 0xcb00_7163, 0xcb00_7208, 0xc633_6401];
const CPORTS: [u16; 5] = [1000, 1001, 40000, 5353, 0];

fn world() -> World {
    let vip1 = 0xc633_640a;
    let vip2 = 0xc633_640b;
    let d = |a: u32, port: u16, fwd: FwdMethod| DestDef { addr: 0x0a01_0100 + a, port, fwd };
    World {
        svcs: vec![
            Svc {
                proto: PROTO_TCP,
                vaddr: vip1,
                port: 80,
                persistent: None,
                netmask: !0,
                one_packet: false,
                dests: vec![0, 1],
            },
            Svc {
                proto: PROTO_TCP,
                vaddr: vip1,
                port: 443,
                persistent: Some(30),
                netmask: 0xffff_ff00,
                one_packet: false,
                dests: vec![2, 3],
            },
            Svc {
                proto: PROTO_UDP,
                vaddr: vip2,
                port: 53,
                persistent: Some(20),
                netmask: !0,
                one_packet: false,
                dests: vec![4, 5],
            },
            Svc {
                proto: PROTO_UDP,
                vaddr: vip2,
                port: 5000,
                persistent: None,
                netmask: !0,
                one_packet: true,
                dests: vec![6],
            },
            Svc {
                proto: PROTO_TCP,
                vaddr: vip2,
                port: 21,
                persistent: Some(40),
                netmask: !0,
                one_packet: false,
                dests: vec![7],
            },
        ],
        dests: vec![
            d(21, 8080, FwdMethod::Masq),
            d(22, 8080, FwdMethod::Masq),
            d(23, 443, FwdMethod::Route),
            d(24, 443, FwdMethod::Tunnel),
            d(25, 53, FwdMethod::Masq),
            d(26, 53, FwdMethod::Route),
            d(27, 5000, FwdMethod::Masq),
            d(28, 21, FwdMethod::Masq),
        ],
        cursor: vec![0; 5],
    }
}

/// Round robin over the service's available dests with weight > 0.
fn schedule(w: &mut World, s: usize, h: &Mock) -> Option<u32> {
    let n = w.svcs[s].dests.len();
    for k in 1..=n {
        let i = (w.cursor[s] + k) % n;
        let d = w.svcs[s].dests[i];
        let md = &h.d[d as usize];
        if md.available && md.weight > 0 {
            w.cursor[s] = i;
            return Some(d);
        }
    }
    None
}

/// One inbound packet through the kernel's flow; appends what happened.
#[allow(clippy::too_many_arguments)]
fn packet_in<T: Table>(
    t: &mut T,
    h: &mut Mock,
    w: &mut World,
    s: usize,
    c: usize,
    p: usize,
    f: u8,
    now: u64,
    out: &mut Vec<String>,
) {
    let svc = &w.svcs[s];
    let f = if svc.proto == PROTO_TCP { f } else { 0 };
    let tup = Tuple { proto: svc.proto, saddr: CLIENTS[c], sport: CPORTS[p], daddr: svc.vaddr, dport: svc.port };
    match t.lookup_in(h, &tup, f, now) {
        In::Miss(m) => out.push(format!("miss {m:?}")),
        r => return out.push(format!("{r:?}")),
    }
    if !t.may_create(tup.proto, f) {
        return out.push("pass".into());
    }
    let (persistent, netmask, port, one_packet) = (svc.persistent, svc.netmask, svc.port, svc.one_packet);
    let mut control = None;
    let d = if let Some(timeout) = persistent {
        let key = TemplateKey::for_packet(tup.proto, tup.saddr, netmask, tup.daddr, tup.dport, port, None);
        match t.template_lookup(h, &key, now) {
            Some((snap, id)) => {
                out.push(format!("template {snap:?}"));
                control = Some(ConnId(id));
                snap.dest.unwrap_or(0)
            }
            None => {
                let Some(d) = schedule(w, s, h) else { return out.push("no dest".into()) };
                let dd = &w.dests[d as usize];
                let dport = template_dport(tup.dport, port, dd.port);
                match t.template_insert(h, &key, dd.addr, dport, DestId(d), dd.fwd, timeout, now) {
                    Ok((snap, id)) => {
                        out.push(format!("new template {snap:?}"));
                        control = Some(ConnId(id));
                        d
                    }
                    Err(e) => return out.push(format!("template {e:?}")),
                }
            }
        }
    } else {
        let Some(d) = schedule(w, s, h) else { return out.push("no dest".into()) };
        d
    };
    let dd = &w.dests[d as usize];
    let mut nc = NewConn::for_packet(&tup, DestId(d), dd.addr, conn_dport(tup.dport, port, dd.port), dd.fwd);
    nc.control = control;
    nc.one_packet = one_packet;
    out.push(format!("{:?}", t.insert(h, &nc, f, now)));
}

const FLAGS: [u8; 10] = [SYN, SYN, SYN | ACK, ACK, ACK | PSH, ACK, FIN | ACK, FIN, RST, 0];

fn run(seed: u64, steps: usize, cfg: ConnConfig) {
    let mut rng = Rng::new(seed);
    let mut real = ConnTable::new(cfg.clone());
    let mut model = Model::new(cfg.clone());
    let mut cfg = cfg;
    let mut w_real = world();
    let mut w_model = world();
    let dests = w_real.dests.len();
    let mut h_real = Mock { d: vec![MockDest { available: true, weight: 1, ..MockDest::default() }; dests] };
    let mut h_model = h_real.clone();
    let mut now: u64 = 1_700_000_000_000 * MS;
    let mut recent: Vec<(usize, usize, usize)> = Vec::new();
    for step in 0..steps {
        now += match rng.below(100) {
            0..=84 => (1 + rng.below(2000)) * MS,
            85..=97 => (1 + rng.below(120_000)) * MS,
            _ => (1 + rng.below(40 * 86_400_000)) * MS,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let what = rng.below(100);
        match what {
            0..=54 => {
                // Mostly packets of recent flows, so conns see whole sessions.
                let (s, c, p) = if !recent.is_empty() && rng.below(10) < 7 {
                    recent[rng.below(recent.len() as u64) as usize]
                } else {
                    let p = rng.below(5) as usize;
                    // Client port 0 only rarely.
                    let p = if p == 4 && rng.below(4) != 0 { 0 } else { p };
                    let flow = (rng.below(5) as usize, rng.below(4) as usize, p);
                    if recent.len() == 6 {
                        recent.remove(0);
                    }
                    recent.push(flow);
                    flow
                };
                let f = rng.pick(&FLAGS);
                packet_in(&mut real, &mut h_real, &mut w_real, s, c, p, f, now, &mut a);
                packet_in(&mut model, &mut h_model, &mut w_model, s, c, p, f, now, &mut b);
            }
            55..=79 => {
                // Mostly replies of live conns (both tables hold the same ones).
                let live: Vec<Conn> = real.iter().filter(|c| !c.is_template()).collect();
                let t = if !live.is_empty() && rng.below(4) != 0 {
                    let c = live[rng.below(live.len() as u64) as usize];
                    let (saddr, sport) = if c.fwd() == FwdMethod::Masq && rng.below(8) != 0 {
                        (c.daddr, c.dport)
                    } else {
                        (c.vaddr, c.vport)
                    };
                    Tuple { proto: c.proto, saddr, sport, daddr: c.caddr, dport: c.cport }
                } else {
                    let svc = &w_real.svcs[rng.below(5) as usize];
                    let (saddr, sport) = if rng.below(3) == 0 {
                        (svc.vaddr, svc.port)
                    } else {
                        let d = &w_real.dests[rng.pick(&svc.dests) as usize];
                        (d.addr, d.port)
                    };
                    Tuple { proto: svc.proto, saddr, sport, daddr: rng.pick(&CLIENTS), dport: rng.pick(&CPORTS) }
                };
                let f = if t.proto == PROTO_TCP { rng.pick(&FLAGS) } else { 0 };
                a.push(format!("{:?}", Table::lookup_out(&mut real, &mut h_real, &t, f, now)));
                b.push(format!("{:?}", Table::lookup_out(&mut model, &mut h_model, &t, f, now)));
            }
            80..=85 => {
                let d = rng.below(dests as u64) as usize;
                let (avail, weight) = match rng.below(3) {
                    0 => (false, h_real.d[d].weight),
                    1 => (true, 1),
                    _ => (h_real.d[d].available, 0),
                };
                for h in [&mut h_real, &mut h_model] {
                    h.d[d].available = avail;
                    h.d[d].weight = weight;
                }
            }
            86..=88 => {
                Table::flush(&mut real, &mut h_real, now);
                Table::flush(&mut model, &mut h_model, now);
            }
            89..=91 => {
                let (tcp, fin, udp) = (rng.pick(&[0, 2, 30, 900]), rng.pick(&[0, 3, 120]), rng.pick(&[0, 2, 300]));
                Table::set_timeouts(&mut real, tcp, fin, udp);
                Table::set_timeouts(&mut model, tcp, fin, udp);
                if tcp != 0 {
                    cfg.tcp_timeouts[TcpState::Established as usize] = tcp;
                }
                if fin != 0 {
                    cfg.tcp_timeouts[TcpState::FinWait as usize] = fin;
                }
                if udp != 0 {
                    cfg.udp_timeout = udp;
                }
            }
            92..=95 => {
                match rng.below(7) {
                    0 => cfg.conn_reuse_mode = rng.pick(&[0, 1, 3]),
                    1 => cfg.expire_nodest_conn ^= true,
                    2 => cfg.expire_quiescent_template ^= true,
                    3 => cfg.secure_tcp ^= true,
                    4 => cfg.sloppy_tcp ^= true,
                    5 => cfg.max_conns = rng.pick(&[0, 3, 6, 12, 25]),
                    _ => cfg.evict_established ^= true,
                }
                Table::set_config(&mut real, cfg.clone());
                Table::set_config(&mut model, cfg.clone());
            }
            _ => {
                Table::expire(&mut real, &mut h_real, now);
                Table::expire(&mut model, &mut h_model, now);
            }
        }
        let ctx = || format!("seed {seed:#x} step {step} op {what} cfg {cfg:?}");
        assert_eq!(a, b, "results differ: {}", ctx());
        assert_eq!(real.snapshot(), model.snapshot(), "contents differ: {}", ctx());
        assert_eq!(real.size(), model.size(), "sizes differ: {}", ctx());
        assert_eq!(h_real, h_model, "dest counters differ: {}", ctx());
        assert_eq!(real.counters(), model.counters(), "statistics differ: {}", ctx());
        assert!(h_real.d.iter().all(|d| d.active >= 0 && d.inactive >= 0 && d.persist >= 0), "{}", ctx());
        if cfg.max_conns > 0 {
            assert!(real.size() <= (cfg.max_conns as usize).max(model.size()), "{}", ctx());
        }
    }
    // Everything expires eventually and every counter returns to zero.
    now += 100 * 86_400_000 * MS;
    Table::expire(&mut real, &mut h_real, now);
    Table::expire(&mut model, &mut h_model, now);
    assert_eq!(real.size(), 0, "seed {seed:#x}");
    assert_eq!(model.size(), 0);
    assert!(h_real.d.iter().all(|d| d.active == 0 && d.inactive == 0 && d.persist == 0), "{h_real:?}");
    let st = real.counters();
    eprintln!("seed {seed:#x}: {st:?}");
    // The run must have exercised the interesting paths.
    assert!(st.hits > 1000 && st.expired > 500 && st.postponed > 100 && st.template_hits > 100, "{st:?}");
    assert!(st.reused + st.nodest_expired > 0 && st.templates_invalidated > 0 && st.one_packet > 0, "{st:?}");
}

#[test]
fn matches_the_model_default_config() {
    run(0x1234_5678_9abc_def1, 12_000, ConnConfig::default());
}

#[test]
fn matches_the_model_small_bounded_table() {
    let cfg = ConnConfig { max_conns: 8, ..ConnConfig::default() };
    run(0x0bad_cafe_f00d_0001, 12_000, cfg);
}

#[test]
fn matches_the_model_with_every_knob() {
    let cfg = ConnConfig {
        max_conns: 12,
        evict_established: true,
        expire_nodest_conn: true,
        expire_quiescent_template: true,
        conn_reuse_mode: 3,
        sloppy_tcp: true,
        tcp_timeouts: [2, 30, 120, 5, 4, 6, 2, 6, 3, 120, 5],
        udp_timeout: 7,
        ..ConnConfig::default()
    };
    run(0x5eed_0000_0000_0042, 12_000, cfg);
}
