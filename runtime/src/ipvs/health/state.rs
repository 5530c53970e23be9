//! keepalived's checker state machine, with time as a parameter.
//!
//! [`Checks`] knows the `check` lines, the real servers they apply to and,
//! per server, one checker per applicable line. It never runs a probe and
//! never reads a clock: the caller hands it the director's real servers
//! ([`Checks::sync`]), asks which probes are due ([`Checks::due`]), runs
//! them wherever it likes, hands back their outcomes ([`Checks::finish`])
//! and carries out the returned [`Action`]s. Times are [`Duration`]s since
//! any origin the caller picks (the live monitor: its start).
//!
//! # Rules (spec 6.1, `check_tcp.c`, `ipwrapper.c`)
//! - After a probe: if it succeeded, or the checker has used its `retry`
//!   retries, the retry count resets, the next probe is `delay_loop` later
//!   and the result is *reported*: success makes the checker UP, failure
//!   DOWN. Otherwise (a failure with retries left) the retry count grows
//!   and the next probe is `delay_before_retry` later. So a checker goes
//!   DOWN after `retry + 1` consecutive failures and UP after one success.
//! - A real server is UP when all its checkers are UP. Checkers start UP
//!   (keepalived without `alpha`) and probe at once.
//! - Server DOWN: its weight becomes 0 (keepalived's `inhibit_on_failure`);
//!   the weight it had is remembered. Server UP: it gets the remembered
//!   weight back, or the misc-dynamic weight if a dynamic checker reported one.
//! - misc `dynamic`: a success with exit 2..=255 carries weight exit − 2;
//!   the server's weight is the smallest weight its dynamic checkers
//!   reported, applied at once while the server is UP (keepalived pushes
//!   weight changes only for live servers).
//!
//! # Operator edits
//! [`Checks::sync`] compares each server's weight in the director with the
//! weight the monitor last set or saw. A difference is an edit by someone
//! else (`p4lite ctl`, a timed `@T` line): while the server is UP the new
//! weight is adopted (and is what a later DOWN remembers); while it is
//! DOWN the new weight becomes the one to restore and the server is set
//! back to 0, because a failing server must not take new connections. A
//! misc-dynamic result overrides an operator's weight at its next report,
//! as in keepalived. Servers added later get checkers when first seen;
//! servers removed lose theirs (a probe still running is forgotten).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::config::CheckSpec;
use crate::ipvs::service::ServiceKey;

/// A real server of a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestKey {
    /// The virtual service.
    pub service: ServiceKey,
    /// The real server's address.
    pub addr: Ipv4Addr,
    /// The real server's port.
    pub port: u16,
}

impl fmt::Display for DestKey {
    /// `TCP 10.77.0.100:80 -> 10.77.2.11:8000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.service;
        write!(f, "{} {}:{} -> {}:{}", s.proto.name(), s.addr, s.port, self.addr, self.port)
    }
}

/// A real server as the director has it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestView {
    /// Which server.
    pub key: DestKey,
    /// Its current weight.
    pub weight: u32,
}

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Success.
    pub ok: bool,
    /// One line for logs and listings (`connect: Connection refused`, `HTTP 200`).
    pub detail: String,
    /// A misc-dynamic success's weight.
    pub weight: Option<u32>,
}

impl Outcome {
    /// A success.
    pub fn up(detail: impl Into<String>) -> Outcome {
        Outcome { ok: true, detail: detail.into(), weight: None }
    }

    /// A failure.
    pub fn down(detail: impl Into<String>) -> Outcome {
        Outcome { ok: false, detail: detail.into(), weight: None }
    }
}

/// Identifies a probe handed out by [`Checks::due`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// A probe to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Hand it back to [`Checks::finish`].
    pub id: JobId,
    /// The server to probe.
    pub dest: DestKey,
    /// The check, an index into [`Checks::specs`].
    pub check: usize,
}

/// Something the caller must do: log `event` and, if `weight` is given,
/// set the server's weight from `.0` to `.1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The server concerned.
    pub dest: DestKey,
    /// What happened (`DOWN after 2 failed checks (HTTP 500)`).
    pub event: String,
    /// The weight change, (from, to); `None`: the weight stays.
    pub weight: Option<(u32, u32)>,
}

/// One checker as listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerStatus {
    /// The check, an index into [`Checks::specs`].
    pub check: usize,
    /// UP or DOWN.
    pub up: bool,
    /// Consecutive failed probes.
    pub fails: u32,
    /// The latest outcome and when it came.
    pub last: Option<(Outcome, Duration)>,
}

/// One checked server as listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// Which server.
    pub dest: DestKey,
    /// UP (all checkers up) or DOWN.
    pub up: bool,
    /// The weight the monitor last set or saw.
    pub weight: u32,
    /// The weight it gets back when UP again (or keeps while UP).
    pub restore: u32,
    /// Its checkers.
    pub checkers: Vec<CheckerStatus>,
}

#[derive(Clone, Debug)]
struct Checker {
    check: usize,
    up: bool,
    retry_it: u32,
    fails: u32,
    due: Duration,
    running: Option<JobId>,
    last: Option<(Outcome, Duration)>,
    dynamic: Option<u32>,
}

#[derive(Clone, Debug)]
struct Server {
    up: bool,
    weight: u32,
    restore: u32,
    checkers: Vec<Checker>,
}

impl Server {
    /// The smallest weight the dynamic checkers reported.
    fn dynamic(&self) -> Option<u32> {
        self.checkers.iter().filter_map(|c| c.dynamic).min()
    }
}

/// The checkers of every checked real server (module docs).
#[derive(Clone, Debug, Default)]
pub struct Checks {
    specs: Vec<CheckSpec>,
    servers: BTreeMap<DestKey, Server>,
    next_id: u64,
}

impl Checks {
    /// Checks for the `check` lines `specs`; no server is known yet.
    pub fn new(specs: Vec<CheckSpec>) -> Checks {
        Checks { specs, servers: BTreeMap::new(), next_id: 0 }
    }

    /// The `check` lines.
    pub fn specs(&self) -> &[CheckSpec] {
        &self.specs
    }

    /// Takes the director's current real servers (all of them; the ones no
    /// check applies to are ignored): new servers get checkers due at
    /// `now`, vanished ones lose theirs, edited weights are handled as the
    /// module docs say.
    pub fn sync(&mut self, dests: &[DestView], now: Duration) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut seen = BTreeSet::new();
        for v in dests {
            let k = &v.key;
            let checks: Vec<usize> =
                (0..self.specs.len()).filter(|&i| self.specs[i].applies_to(&k.service, k.addr, k.port)).collect();
            if checks.is_empty() {
                continue;
            }
            seen.insert(*k);
            let Some(s) = self.servers.get_mut(k) else {
                let checkers = checks
                    .into_iter()
                    .map(|check| Checker {
                        check,
                        up: true,
                        retry_it: 0,
                        fails: 0,
                        due: now,
                        running: None,
                        last: None,
                        dynamic: None,
                    })
                    .collect();
                self.servers.insert(*k, Server { up: true, weight: v.weight, restore: v.weight, checkers });
                continue;
            };
            if v.weight == s.weight {
                continue;
            }
            s.restore = v.weight;
            s.weight = v.weight;
            if !s.up && v.weight != 0 {
                actions.push(Action {
                    dest: *k,
                    event: format!(
                        "weight set to {} by a control command while DOWN; kept at 0 until UP, then {} again",
                        v.weight, v.weight
                    ),
                    weight: Some((v.weight, 0)),
                });
                s.weight = 0;
            }
        }
        self.servers.retain(|k, _| seen.contains(k));
        actions
    }

    /// The probes due at `now`, each marked running until [`Checks::finish`].
    pub fn due(&mut self, now: Duration) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (k, s) in &mut self.servers {
            for c in &mut s.checkers {
                if c.running.is_none() && c.due <= now {
                    let id = JobId(self.next_id);
                    self.next_id += 1;
                    c.running = Some(id);
                    jobs.push(Job { id, dest: *k, check: c.check });
                }
            }
        }
        jobs
    }

    /// When the next probe is due (none while every checker is running or
    /// no server is checked).
    pub fn next_due(&self) -> Option<Duration> {
        self.servers.values().flat_map(|s| &s.checkers).filter(|c| c.running.is_none()).map(|c| c.due).min()
    }

    /// Takes the outcome of probe `id`, finished at `now` (module docs).
    /// A probe of a server removed meanwhile is ignored.
    pub fn finish(&mut self, id: JobId, outcome: Outcome, now: Duration) -> Vec<Action> {
        let found = self.servers.iter_mut().find_map(|(k, s)| {
            let i = s.checkers.iter().position(|c| c.running == Some(id))?;
            Some((*k, s, i))
        });
        let Some((dest, server, i)) = found else { return Vec::new() };
        let several = server.checkers.len() > 1;
        let c = &mut server.checkers[i];
        let spec = &self.specs[c.check];
        c.running = None;
        c.last = Some((outcome.clone(), now));
        c.fails = if outcome.ok { 0 } else { c.fails + 1 };
        if !outcome.ok && c.retry_it < spec.retry {
            c.retry_it += 1;
            c.due = now + spec.delay_before_retry;
            return Vec::new();
        }
        c.retry_it = 0;
        c.due = now + spec.delay_loop;
        let was_up = c.up;
        c.up = outcome.ok;
        if outcome.ok {
            if let Some(w) = outcome.weight {
                c.dynamic = Some(w);
            }
        }
        // Name the check when the server has several, unless the detail does.
        let kind = spec.kind.name();
        let detail = if several && !outcome.detail.to_ascii_lowercase().starts_with(kind) {
            format!("{kind}: {}", outcome.detail)
        } else {
            outcome.detail.clone()
        };
        let fails = c.fails;
        let checker_changed = was_up != outcome.ok;
        let all_up = server.checkers.iter().all(|c| c.up);
        let event = |event: String, weight| vec![Action { dest, event, weight }];
        match (server.up, all_up) {
            (true, false) => {
                server.up = false;
                server.restore = server.weight;
                let from = std::mem::replace(&mut server.weight, 0);
                event(format!("DOWN after {fails} failed checks ({detail})"), Some((from, 0)))
            }
            (false, true) => {
                server.up = true;
                let to = server.dynamic().unwrap_or(server.restore);
                server.restore = to;
                let from = std::mem::replace(&mut server.weight, to);
                event(format!("UP ({detail})"), Some((from, to)))
            }
            (true, true) => match server.dynamic() {
                Some(to) if outcome.weight.is_some() && to != server.weight => {
                    server.restore = to;
                    let from = std::mem::replace(&mut server.weight, to);
                    event(format!("new weight ({detail})"), Some((from, to)))
                }
                _ => Vec::new(),
            },
            (false, false) if checker_changed => {
                let state = if outcome.ok { "UP" } else { "DOWN" };
                let why = if outcome.ok { "other checks still failing" } else { "already DOWN" };
                let what = if outcome.ok {
                    format!("{} check {state} ({detail})", spec.kind.name())
                } else {
                    format!("{} check {state} after {fails} failed checks ({detail})", spec.kind.name())
                };
                event(format!("{what}; {why}"), None)
            }
            (false, false) => Vec::new(),
        }
    }

    /// Tells that the weight request for `dest` ran: the weight was `old`
    /// and is now `new`. `old` differs from what the monitor thought when
    /// someone else changed it meanwhile; for a server that is DOWN, `old`
    /// is then the weight to restore.
    pub fn applied(&mut self, dest: &DestKey, old: u32, new: u32) {
        if let Some(s) = self.servers.get_mut(dest) {
            s.weight = new;
            if !s.up {
                s.restore = old;
            }
        }
    }

    /// Every checked server, in service and address order.
    pub fn status(&self) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|(k, s)| ServerStatus {
                dest: *k,
                up: s.up,
                weight: s.weight,
                restore: s.restore,
                checkers: s
                    .checkers
                    .iter()
                    .map(|c| CheckerStatus { check: c.check, up: c.up, fails: c.fails, last: c.last.clone() })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::health::config::parse_check_line;
    use crate::ipvs::service::Protocol;

    const VIP: ServiceKey = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(10, 77, 0, 100), port: 80 };

    fn dest(last: u8) -> DestKey {
        DestKey { service: VIP, addr: Ipv4Addr::new(10, 77, 2, last), port: 8000 }
    }

    fn view(last: u8, weight: u32) -> DestView {
        DestView { key: dest(last), weight }
    }

    fn checks(lines: &[&str]) -> Checks {
        Checks::new(lines.iter().map(|l| parse_check_line(l).unwrap()).collect())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs every due probe of `dest` at `now` with `outcome`; returns the actions.
    fn probe(c: &mut Checks, now: Duration, d: DestKey, outcome: &Outcome) -> Vec<Action> {
        let jobs: Vec<Job> = c.due(now).into_iter().filter(|j| j.dest == d).collect();
        assert!(!jobs.is_empty(), "nothing due for {d} at {now:?}");
        jobs.into_iter().flat_map(|j| c.finish(j.id, outcome.clone(), now)).collect()
    }

    fn refused() -> Outcome {
        Outcome::down("connect: Connection refused")
    }

    #[test]
    fn down_after_retry_plus_one_failures_up_after_one_success() {
        let mut c = checks(&["check -t 10.77.0.100:80 tcp delay_loop 10 retry 2 delay_before_retry 1"]);
        assert!(c.sync(&[view(11, 3)], ms(0)).is_empty());
        // Checkers start UP and probe at once.
        assert_eq!(c.next_due(), Some(ms(0)));
        assert!(probe(&mut c, ms(0), dest(11), &Outcome::up("connected")).is_empty());
        // Reported success: next probe after delay_loop.
        assert_eq!(c.next_due(), Some(ms(10_000)));
        assert!(c.due(ms(9_999)).is_empty());
        // Failures 1 and 2 are retried after delay_before_retry.
        assert!(probe(&mut c, ms(10_000), dest(11), &refused()).is_empty());
        assert_eq!(c.next_due(), Some(ms(11_000)));
        assert!(probe(&mut c, ms(11_000), dest(11), &refused()).is_empty());
        assert_eq!(c.next_due(), Some(ms(12_000)));
        // Failure 3 = retry + 1: DOWN, weight 3 -> 0, next after delay_loop.
        let a = probe(&mut c, ms(12_000), dest(11), &refused());
        assert_eq!(
            a,
            [Action {
                dest: dest(11),
                event: "DOWN after 3 failed checks (connect: Connection refused)".into(),
                weight: Some((3, 0))
            }]
        );
        assert_eq!(c.next_due(), Some(ms(22_000)));
        let st = &c.status()[0];
        assert_eq!((st.up, st.weight, st.restore, st.checkers[0].fails), (false, 0, 3, 3));
        // Still failing while DOWN: nothing new to report.
        for t in [22_000, 23_000, 24_000] {
            assert!(probe(&mut c, ms(t), dest(11), &refused()).is_empty());
        }
        assert_eq!(c.status()[0].checkers[0].fails, 6);
        // One success: UP with the weight it had.
        let a = probe(&mut c, ms(34_000), dest(11), &Outcome::up("connected"));
        assert_eq!(a, [Action { dest: dest(11), event: "UP (connected)".into(), weight: Some((0, 3)) }]);
        assert_eq!(c.status()[0].checkers[0].fails, 0);
        assert_eq!(c.next_due(), Some(ms(44_000)));
    }

    #[test]
    fn a_success_between_failures_resets_the_retries() {
        let mut c = checks(&["check -t 10.77.0.100:80 tcp delay_loop 1 retry 1 delay_before_retry 0.5"]);
        c.sync(&[view(11, 1)], ms(0));
        assert!(probe(&mut c, ms(0), dest(11), &refused()).is_empty());
        assert!(probe(&mut c, ms(500), dest(11), &Outcome::up("connected")).is_empty());
        assert!(probe(&mut c, ms(1500), dest(11), &refused()).is_empty());
        assert_eq!(probe(&mut c, ms(2000), dest(11), &refused())[0].weight, Some((1, 0)));
        // retry 0 (misc's default): DOWN at the first failure.
        let mut c = checks(&["check -t 10.77.0.100:80 misc false delay_loop 1"]);
        c.sync(&[view(11, 2)], ms(0));
        assert_eq!(
            probe(&mut c, ms(0), dest(11), &Outcome::down("misc exit 1"))[0].event,
            "DOWN after 1 failed checks (misc exit 1)"
        );
    }

    #[test]
    fn a_server_is_up_only_when_every_checker_is() {
        let mut c = checks(&[
            "check -t 10.77.0.100:80 tcp delay_loop 1 retry 0",
            "check -t 10.77.0.100:80 -r 10.77.2.11:8000 http delay_loop 1 retry 0",
        ]);
        c.sync(&[view(11, 4), view(12, 1)], ms(0));
        // Server .11 has both checkers, .12 only the tcp one.
        let jobs = c.due(ms(0));
        assert_eq!(jobs.iter().filter(|j| j.dest == dest(11)).count(), 2);
        assert_eq!(jobs.iter().filter(|j| j.dest == dest(12)).count(), 1);
        let (tcp, http) = (jobs[0].clone(), jobs[1].clone());
        assert_eq!((c.specs()[tcp.check].kind.name(), c.specs()[http.check].kind.name()), ("tcp", "http"));
        let a = c.finish(http.id, Outcome::down("HTTP 500"), ms(10));
        assert_eq!(a[0].event, "DOWN after 1 failed checks (HTTP 500)");
        assert_eq!(a[0].weight, Some((4, 0)));
        // The tcp checker fails too: the server was already DOWN.
        let a = c.finish(tcp.id, refused(), ms(20));
        assert_eq!(a[0].event, "tcp check DOWN after 1 failed checks (tcp: connect: Connection refused); already DOWN");
        assert_eq!(a[0].weight, None);
        // One back: still DOWN. Both back: UP with weight 4.
        let jobs = c.due(ms(1020));
        let a = c.finish(jobs[0].id, Outcome::up("connected"), ms(1030));
        assert_eq!(a[0].event, "tcp check UP (tcp: connected); other checks still failing");
        let a = c.finish(jobs[1].id, Outcome::up("HTTP 200"), ms(1040));
        assert_eq!(a[0], Action { dest: dest(11), event: "UP (HTTP 200)".into(), weight: Some((0, 4)) });
    }

    #[test]
    fn misc_dynamic_sets_the_weight() {
        let mut c = checks(&["check -t 10.77.0.100:80 misc load dynamic delay_loop 5"]);
        c.sync(&[view(11, 1)], ms(0));
        let load = |w| Outcome { ok: true, detail: format!("misc exit {}", w + 2), weight: Some(w) };
        let a = probe(&mut c, ms(0), dest(11), &load(7));
        assert_eq!(a, [Action { dest: dest(11), event: "new weight (misc exit 9)".into(), weight: Some((1, 7)) }]);
        // The same weight again: nothing to do.
        assert!(probe(&mut c, ms(5000), dest(11), &load(7)).is_empty());
        // A plain success (exit 0) keeps the dynamic weight.
        assert!(probe(&mut c, ms(10_000), dest(11), &Outcome::up("misc exit 0")).is_empty());
        // DOWN, then UP with a new dynamic weight.
        assert_eq!(probe(&mut c, ms(15_000), dest(11), &Outcome::down("misc exit 1"))[0].weight, Some((7, 0)));
        let a = probe(&mut c, ms(20_000), dest(11), &load(2));
        assert_eq!(a[0], Action { dest: dest(11), event: "UP (misc exit 4)".into(), weight: Some((0, 2)) });
        assert_eq!(c.status()[0].restore, 2);
    }

    #[test]
    fn servers_follow_the_director() {
        let mut c = checks(&["check -t 10.77.0.100:80 tcp delay_loop 1 retry 0"]);
        c.sync(&[view(11, 1), view(12, 1)], ms(0));
        let jobs = c.due(ms(0));
        assert_eq!(jobs.len(), 2);
        // .12 is removed while its probe runs; its outcome is dropped.
        c.sync(&[view(11, 1)], ms(5));
        assert!(c.finish(jobs[1].id, refused(), ms(10)).is_empty());
        assert_eq!(c.status().len(), 1);
        // A server added later is checked at once; other services are not.
        let other = DestView { key: DestKey { service: ServiceKey { port: 81, ..VIP }, ..dest(14) }, weight: 1 };
        c.sync(&[view(11, 1), view(13, 2), other], ms(20));
        let due = c.due(ms(20));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].dest, dest(13));
        assert_eq!(c.status().iter().map(|s| s.dest.addr.octets()[3]).collect::<Vec<_>>(), [11, 13]);
        // A check with -r only covers that server.
        let mut c = checks(&["check -t 10.77.0.100:80 -r 10.77.2.12:8000 tcp"]);
        c.sync(&[view(11, 1), view(12, 1)], ms(0));
        assert_eq!(c.status().len(), 1);
        assert_eq!(c.status()[0].dest, dest(12));
        assert_eq!(c.next_due(), Some(ms(0)));
        c.due(ms(0));
        assert_eq!(c.next_due(), None, "the only checker is running");
    }

    #[test]
    fn operator_edits() {
        let mut c = checks(&["check -t 10.77.0.100:80 tcp delay_loop 1 retry 0"]);
        c.sync(&[view(11, 3)], ms(0));
        // While UP an edited weight is adopted and remembered at DOWN.
        assert!(c.sync(&[view(11, 5)], ms(1)).is_empty());
        assert_eq!(probe(&mut c, ms(2), dest(11), &refused())[0].weight, Some((5, 0)));
        // While DOWN an edited weight is the one to restore; the server goes back to 0.
        let a = c.sync(&[view(11, 8)], ms(3));
        assert_eq!(
            a,
            [Action {
                dest: dest(11),
                event: "weight set to 8 by a control command while DOWN; kept at 0 until UP, then 8 again".into(),
                weight: Some((8, 0))
            }]
        );
        c.applied(&dest(11), 8, 0);
        assert!(c.sync(&[view(11, 0)], ms(4)).is_empty());
        // The monitor's own 0 is not an edit; UP restores the operator's 8.
        assert_eq!(probe(&mut c, ms(1002), dest(11), &Outcome::up("connected"))[0].weight, Some((0, 8)));
        // The weight changed between the monitor's view and its request:
        // the request's answer tells the weight to restore.
        assert_eq!(probe(&mut c, ms(2002), dest(11), &refused())[0].weight, Some((8, 0)));
        c.applied(&dest(11), 6, 0);
        assert_eq!(c.status()[0].restore, 6);
        assert_eq!(probe(&mut c, ms(3002), dest(11), &Outcome::up("connected"))[0].weight, Some((0, 6)));
    }
}
