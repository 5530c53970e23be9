//! The kernel's rate estimator (`ip_vs_est.c`), for `ipvsadm -L --rate`.
//!
//! Every 2 seconds, for each counter of each service and dest and the
//! totals, the kernel takes the increase since the last run, scales it
//! (connections and packets by 2^10, bytes by 2^5, per second) and moves
//! an average a quarter of the way towards it:
//! `avg += (rate − avg) >> 2`. The listing shows `(avg + 0x1FF) >> 10`
//! (cps, pps) and `(avg + 0xF) >> 5` (bytes/s).
//!
//! The service model keeps counters but no estimator, so this lives here
//! as an observer: call [`RateEstimator::advance`] with the current time
//! (packet timestamps in replay) and it runs every 2-second tick that is
//! due. When several ticks are due at once (a gap in traffic), the first
//! sees the whole increase and the others see none, which is what the
//! kernel computes when the counters did not move in between.
//! Counters that went down (`ipvsadm -Z`) restart the estimate at zero,
//! as `ip_vs_zero_estimator()` does: at once when the director commits the
//! change ([`RateEstimator::restart_zeroed`]), so a listing right after
//! `-Z` shows zero rates, as the kernel's does.
//!
//! A dest's estimate belongs to the dest object ([`Dest::serial`]), as the
//! kernel's estimator is part of `struct ip_vs_dest`: deleting the dest
//! stops it (`__ip_vs_del_dest` → `ip_vs_stop_estimator`), so it stays
//! frozen while the dest is in the trash, and re-adding the dest from the
//! trash (`ip_vs_add_dest` → `ip_vs_trash_get_dest`,
//! `ip_vs_start_estimator`) resumes it with the rates it had, its counters
//! kept. Only a revival into a re-created service zeroes the counters and
//! the rates (`__ip_vs_update_dest` → `ip_vs_zero_stats`). A freed dest's
//! estimate is forgotten; a new dest starts from zero.

use std::collections::HashMap;

use crate::ipvs::service::{Dest, ServiceId, ServiceKey, Services, Stats};

/// Seconds between two estimator runs (`IPVS_EST_TICK` is 2 s).
pub const EST_INTERVAL: u64 = 2;

/// Rates as `ipvsadm --rate` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second, client → server.
    pub inpps: u64,
    /// Packets per second, server → client.
    pub outpps: u64,
    /// Bytes per second, client → server.
    pub inbps: u64,
    /// Bytes per second, server → client.
    pub outbps: u64,
}

/// The estimator state of one set of counters (`struct ip_vs_estimator`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Estimator {
    last: Stats,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

impl Estimator {
    /// A new estimator starts from the current counters with zero rates
    /// (`ip_vs_start_estimator()`).
    fn new(now: &Stats) -> Estimator {
        Estimator { last: *now, ..Estimator::default() }
    }

    /// Whether a counter of `s` is below what the last run saw: the
    /// counters were zeroed since.
    fn zeroed_since(&self, s: &Stats) -> bool {
        let l = self.last;
        s.conns < l.conns
            || s.inpkts < l.inpkts
            || s.outpkts < l.outpkts
            || s.inbytes < l.inbytes
            || s.outbytes < l.outbytes
    }

    /// Starts afresh from `s` if the counters were zeroed since the last run.
    fn restart_if_zeroed(&mut self, s: &Stats) {
        if self.zeroed_since(s) {
            *self = Estimator::new(s);
        }
    }

    /// One 2-second run.
    fn tick(&mut self, s: &Stats) {
        let l = self.last;
        if self.zeroed_since(s) {
            *self = Estimator::new(s);
            return;
        }
        // Increase per 2 s, shifted by 9 (= per second × 2^10) or 4
        // (= per second × 2^5).
        let step = |avg: &mut i64, now: u64, last: u64, shift: u32| {
            let rate = (now - last).saturating_mul(1 << shift).min(i64::MAX as u64) as i64;
            *avg += (rate - *avg) >> 2;
        };
        step(&mut self.cps, s.conns, l.conns, 9);
        step(&mut self.inpps, s.inpkts, l.inpkts, 9);
        step(&mut self.outpps, s.outpkts, l.outpkts, 9);
        step(&mut self.inbps, s.inbytes, l.inbytes, 4);
        step(&mut self.outbps, s.outbytes, l.outbytes, 4);
        self.last = *s;
    }

    /// `ip_vs_read_estimator()`.
    fn read(&self) -> Rates {
        let pps = |v: i64| (v.max(0) as u64 + 0x1FF) >> 10;
        let bps = |v: i64| (v.max(0) as u64 + 0xF) >> 5;
        Rates {
            cps: pps(self.cps),
            inpps: pps(self.inpps),
            outpps: pps(self.outpps),
            inbps: bps(self.inbps),
            outbps: bps(self.outbps),
        }
    }
}

/// The estimate of one dest object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DestEstimator {
    /// The service the dest was bound to at the last run: a revival into
    /// another (re-created) service zeroes the estimate.
    service: ServiceId,
    /// False while the dest is in the trash: the estimate is stopped.
    running: bool,
    est: Estimator,
}

/// Rate estimates of every service, every dest object and the totals.
#[derive(Clone, Debug, Default)]
pub struct RateEstimator {
    next_tick: Option<u64>,
    services: HashMap<ServiceKey, Estimator>,
    /// By [`Dest::serial`]: listed dests, and trashed ones (stopped).
    dests: HashMap<u64, DestEstimator>,
    total: Estimator,
}

impl RateEstimator {
    /// An estimator that starts at its first [`RateEstimator::advance`].
    pub fn new() -> RateEstimator {
        RateEstimator::default()
    }

    /// Runs every tick due at or before `now` (seconds). Services and
    /// dests that appeared since the last run start estimating; those that
    /// disappeared are forgotten.
    pub fn advance(&mut self, services: &Services, now: u64) {
        let Some(mut next) = self.next_tick else {
            self.restart(services);
            self.next_tick = Some(now + EST_INTERVAL);
            return;
        };
        let mut first = true;
        while next <= now {
            if first {
                self.tick(services);
                first = false;
            } else if self.all_zero() {
                // Idle ticks of zero rates change nothing: skip to the last
                // one due (a long gap in packet time costs the ticks the
                // rates take to decay, at most a few hundred).
                next += (now - next) / EST_INTERVAL * EST_INTERVAL;
            } else {
                self.tick_idle();
            }
            next += EST_INTERVAL;
        }
        self.next_tick = Some(next);
    }

    /// Restarts now, with zero rates, every estimate whose counters went
    /// down since its last run (`ipvsadm -Z`: `ip_vs_zero_stats()` zeroes
    /// the rates with the counters). Without this the old rates would show
    /// until the next tick, and traffic before it would be measured from
    /// the old counters.
    pub fn restart_zeroed(&mut self, services: &Services) {
        for svc in services.services() {
            if let Some(e) = self.services.get_mut(&svc.key) {
                e.restart_if_zeroed(&svc.stats);
            }
            for &d in svc.dests() {
                let dest = services.dest(d);
                if let Some(e) = self.dests.get_mut(&dest.serial()) {
                    if e.service == svc.id {
                        e.est.restart_if_zeroed(&dest.stats);
                    } else {
                        // Revived into a re-created service: zeroed.
                        *e = DestEstimator { service: svc.id, running: true, est: Estimator::new(&dest.stats) };
                    }
                }
            }
        }
        self.total.restart_if_zeroed(services.total_stats());
    }

    /// Starts every estimator afresh from the current counters.
    fn restart(&mut self, services: &Services) {
        self.services.clear();
        self.dests.clear();
        for svc in services.services() {
            self.services.insert(svc.key, Estimator::new(&svc.stats));
            for &d in svc.dests() {
                let dest = services.dest(d);
                let e = DestEstimator { service: svc.id, running: true, est: Estimator::new(&dest.stats) };
                self.dests.insert(dest.serial(), e);
            }
        }
        self.total = Estimator::new(services.total_stats());
    }

    fn tick(&mut self, services: &Services) {
        let mut seen_services = HashMap::with_capacity(self.services.len());
        let mut seen_dests = HashMap::with_capacity(self.dests.len());
        for svc in services.services() {
            let mut e = self.services.get(&svc.key).copied().unwrap_or_else(|| Estimator::new(&svc.stats));
            e.tick(&svc.stats);
            seen_services.insert(svc.key, e);
            for &d in svc.dests() {
                let dest = services.dest(d);
                let mut e = match self.dests.get(&dest.serial()) {
                    Some(&e) if e.service == svc.id => e,
                    // New, or revived into a re-created service (zeroed).
                    _ => DestEstimator { service: svc.id, running: true, est: Estimator::new(&dest.stats) },
                };
                e.running = true;
                e.est.tick(&dest.stats);
                seen_dests.insert(dest.serial(), e);
            }
        }
        // Trashed dests keep their estimate, stopped; freed ones lose it.
        for &d in services.trash() {
            let serial = services.dest(d).serial();
            if let Some(&e) = self.dests.get(&serial) {
                seen_dests.insert(serial, DestEstimator { running: false, ..e });
            }
        }
        self.services = seen_services;
        self.dests = seen_dests;
        self.total.tick(services.total_stats());
    }

    /// The running dest estimates (not those of trashed dests).
    fn running_dests(&mut self) -> impl Iterator<Item = &mut Estimator> {
        self.dests.values_mut().filter(|e| e.running).map(|e| &mut e.est)
    }

    /// True when every running estimate is 0 (then
    /// [`RateEstimator::tick_idle`] changes nothing).
    fn all_zero(&self) -> bool {
        let zero = |e: &Estimator| e.cps == 0 && e.inpps == 0 && e.outpps == 0 && e.inbps == 0 && e.outbps == 0;
        let running = self.dests.values().filter(|e| e.running).map(|e| &e.est);
        self.services.values().chain(running).chain([&self.total]).all(zero)
    }

    /// A tick in which no counter moved.
    fn tick_idle(&mut self) {
        let mut services = std::mem::take(&mut self.services);
        for e in services.values_mut().chain(self.running_dests()) {
            let last = e.last;
            e.tick(&last);
        }
        self.services = services;
        let last = self.total.last;
        self.total.tick(&last);
    }

    /// The rates of the service `key` (zero if unknown).
    pub fn service_rates(&self, key: &ServiceKey) -> Rates {
        self.services.get(key).map(Estimator::read).unwrap_or_default()
    }

    /// The rates of `dest` (zero if it has no estimate yet).
    pub fn dest_rates(&self, dest: &Dest) -> Rates {
        self.dests.get(&dest.serial()).map(|e| e.est.read()).unwrap_or_default()
    }

    /// The rates of the totals.
    pub fn total_rates(&self) -> Rates {
        self.total.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn stats(conns: u64, pkts: u64, bytes: u64) -> Stats {
        Stats { conns, inpkts: pkts, outpkts: pkts / 2, inbytes: bytes, outbytes: bytes / 2 }
    }

    #[test]
    fn converges_to_the_steady_rate() {
        // 100 conns/s, 1000 packets/s, 1 MB/s in for a long time.
        let mut e = Estimator::new(&Stats::default());
        let mut s = Stats::default();
        for _ in 0..100 {
            s = Stats {
                conns: s.conns + 200,
                inpkts: s.inpkts + 2000,
                outpkts: s.outpkts + 1000,
                inbytes: s.inbytes + 2_000_000,
                outbytes: s.outbytes + 1_000_000,
            };
            e.tick(&s);
        }
        assert_eq!(e.read(), Rates { cps: 100, inpps: 1000, outpps: 500, inbps: 1_000_000, outbps: 500_000 });
    }

    #[test]
    fn first_ticks_follow_the_kernel_arithmetic() {
        let mut e = Estimator::new(&Stats::default());
        // 10 conns in 2 s: rate = 10 << 9 = 5120; avg = 5120 >> 2 = 1280;
        // shown (1280 + 511) >> 10 = 1.
        e.tick(&stats(10, 0, 0));
        assert_eq!(e.cps, 1280);
        assert_eq!(e.read().cps, 1);
        // No change: avg += (0 − 1280) >> 2 = −320 → 960; shown 1.
        e.tick(&stats(10, 0, 0));
        assert_eq!((e.cps, e.read().cps), (960, 1));
        // 1000 bytes in 2 s: rate = 1000 << 4 = 16000; avg 4000; shown (4000 + 15) >> 5 = 125.
        let mut b = Estimator::new(&Stats::default());
        b.tick(&stats(0, 0, 1000));
        assert_eq!(b.read().inbps, 125);
        // 500 bytes out: 8000 → avg 2000 → (2000 + 15) >> 5 = 62.
        assert_eq!(b.read().outbps, 62);
    }

    #[test]
    fn a_long_gap_in_one_step_ends_as_in_many() {
        use crate::ipvs::sched::SchedKind;
        use crate::ipvs::service::{DestConfig, Protocol, ServiceConfig};
        // Traffic for ten seconds, then ten idle days: one advance across
        // the gap leaves the estimates as an advance every tick does.
        let mut services = Services::default();
        let cfg = ServiceConfig::new(Protocol::Tcp, Ipv4Addr::new(10, 0, 0, 1), 80, SchedKind::Rr);
        let svc = services.add_service(&cfg).unwrap();
        let d = services.add_dest(svc, &DestConfig::new(Ipv4Addr::new(10, 1, 1, 1), 80, 1)).unwrap();
        let (mut fast, mut slow) = (RateEstimator::new(), RateEstimator::new());
        for t in 0..10 {
            for _ in 0..1000 {
                services.count_in(d, 1500);
            }
            fast.advance(&services, t);
            slow.advance(&services, t);
        }
        assert!(fast.total_rates().inpps > 0);
        let end = 10 * 86_400 + 1;
        fast.advance(&services, end);
        for t in (10..=end).step_by(2) {
            slow.advance(&services, t);
        }
        slow.advance(&services, end);
        assert_eq!((fast.services == slow.services, fast.dests == slow.dests), (true, true));
        assert_eq!((fast.total, fast.next_tick), (slow.total, slow.next_tick));
        assert_eq!(fast.total_rates(), Rates::default(), "decayed to 0");
    }

    /// `-Z` of one service zeroes its rates and its dests' at once (not at
    /// the next tick), leaving the other service's and the totals; `-Z` of
    /// all zeroes the totals too. Traffic after it is measured from 0.
    #[test]
    fn zeroing_restarts_the_rates_at_once() {
        use crate::ipvs::sched::SchedKind;
        use crate::ipvs::service::{DestConfig, Protocol, ServiceConfig};
        let mut services = Services::default();
        let mut add = |port| {
            let cfg = ServiceConfig::new(Protocol::Tcp, Ipv4Addr::new(10, 0, 0, 1), port, SchedKind::Rr);
            let svc = services.add_service(&cfg).unwrap();
            let d = services.add_dest(svc, &DestConfig::new(Ipv4Addr::new(10, 1, 1, 1), port, 1)).unwrap();
            (svc, d, cfg.key)
        };
        let ((s80, d80, k80), (_, d443, k443)) = (add(80), add(443));
        let mut rates = RateEstimator::new();
        for t in 0..10 {
            for _ in 0..100 {
                services.count_in(d80, 1000);
                services.count_in(d443, 1000);
            }
            rates.advance(&services, t);
        }
        let busy = rates.service_rates(&k443);
        assert!(busy.inpps > 0 && rates.total_rates().inpps > 0);
        services.zero(Some(s80)).unwrap();
        rates.restart_zeroed(&services);
        assert_eq!(rates.service_rates(&k80), Rates::default());
        assert_eq!(rates.dest_rates(services.dest(d80)), Rates::default());
        assert_eq!(rates.service_rates(&k443), busy, "the other service keeps its rates");
        assert!(rates.total_rates().inpps > 0, "-Z of one service keeps the totals");
        // 10 packets before the next tick count as 10, not as 10 − 1000 (a
        // restart at that tick, losing them).
        for _ in 0..10 {
            services.count_in(d80, 1000);
        }
        rates.advance(&services, 10);
        assert_eq!(rates.service_rates(&k80).inpps, (((10u64 << 9) >> 2) + 0x1FF) >> 10);
        services.zero(None).unwrap();
        rates.restart_zeroed(&services);
        assert_eq!(rates.total_rates(), Rates::default());
        assert_eq!(rates.service_rates(&k443), Rates::default());
    }

    /// A dest deleted and re-added while in the trash keeps its estimator
    /// (the kernel's is part of `struct ip_vs_dest`): stopped while in the
    /// trash (no decay), resumed with the same rates and counters on
    /// revival. Revived into a re-created service it is zeroed
    /// (`ip_vs_zero_stats`); a dest freed from the trash and added anew
    /// (its `DestId` reused) starts from zero.
    #[test]
    fn a_revived_dest_keeps_its_estimate() {
        use crate::ipvs::sched::SchedKind;
        use crate::ipvs::service::{DestConfig, Protocol, ServiceConfig};
        let (a, b) = (Ipv4Addr::new(10, 1, 1, 1), Ipv4Addr::new(10, 1, 1, 2));
        let cfg = ServiceConfig::new(Protocol::Tcp, Ipv4Addr::new(10, 0, 0, 1), 80, SchedKind::Rr);
        let mut services = Services::default();
        let svc = services.add_service(&cfg).unwrap();
        let da = services.add_dest(svc, &DestConfig::new(a, 80, 1)).unwrap();
        services.add_dest(svc, &DestConfig::new(b, 80, 1)).unwrap();
        let mut rates = RateEstimator::new();
        for t in 0..10 {
            for _ in 0..100 {
                services.count_in(da, 1000);
            }
            rates.advance(&services, t);
        }
        let busy = rates.dest_rates(services.dest(da));
        assert!(busy.inpps > 0);
        services.delete_dest(svc, a, 80).unwrap();
        rates.restart_zeroed(&services);
        for t in 10..20 {
            rates.advance(&services, t);
        }
        rates.advance(&services, 29); // several ticks at once (tick_idle)
        assert_eq!(services.add_dest(svc, &DestConfig::new(a, 80, 1)).unwrap(), da, "revived");
        rates.restart_zeroed(&services);
        assert_eq!(rates.dest_rates(services.dest(da)), busy, "stopped in the trash, resumed as it was");
        rates.advance(&services, 30);
        let resumed = rates.dest_rates(services.dest(da));
        assert!(resumed.inpps > 0 && resumed.inpps < busy.inpps, "decays from there");
        // Revived into a re-created service: counters and rates zeroed.
        services.delete_service(&cfg.key).unwrap();
        let svc = services.add_service(&cfg).unwrap();
        assert_eq!(services.add_dest(svc, &DestConfig::new(a, 80, 1)).unwrap(), da);
        rates.restart_zeroed(&services);
        assert_eq!(rates.dest_rates(services.dest(da)), Rates::default());
        for _ in 0..100 {
            services.count_in(da, 1000);
        }
        rates.advance(&services, 32);
        assert!(rates.dest_rates(services.dest(da)).inpps > 0);
        // Freed from the trash, then new dests in the freed slots: zero.
        services.delete_dest(svc, a, 80).unwrap();
        rates.advance(&services, 40);
        services.advance(1_000_000);
        assert!(services.try_dest(da).is_none(), "freed");
        let fresh =
            [b, Ipv4Addr::new(10, 1, 1, 3)].map(|x| services.add_dest(svc, &DestConfig::new(x, 80, 1)).unwrap());
        assert!(fresh.contains(&da), "the id is reused");
        rates.restart_zeroed(&services);
        rates.advance(&services, 1000);
        assert_eq!(rates.dest_rates(services.dest(da)), Rates::default());
    }

    #[test]
    fn zeroed_counters_restart() {
        let mut e = Estimator::new(&Stats::default());
        e.tick(&stats(1000, 1000, 1000));
        assert!(e.read().cps > 0);
        e.tick(&Stats::default());
        assert_eq!(e.read(), Rates::default());
    }
}
