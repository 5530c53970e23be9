//! Network-namespace labs for the live tests (`live_netns`, `live_lb`,
//! `live_health`).
//!
//! A [`Lab`] owns everything a test creates: namespaces named
//! `p4lt-PID-TAGSUFFIX`, the veth pairs and bridges inside them, the
//! processes started in them and a scratch directory. Dropping it (also
//! while unwinding from a failed assertion) kills the processes, deletes
//! the namespaces (and with them every veth and bridge) and the directory.
//! Runs killed before their guard ran leave namespaces whose PID is gone;
//! [`delete_stale_namespaces`] removes them.
//!
//! Every command runs under `timeout` ([`run`]), so nothing can hang a
//! test; callers keep their own loops bounded ([`wait_until`]). Veths are
//! created inside the namespaces, never in the root namespace, and their
//! offloads are turned off (the switch forwards exactly the frames it
//! reads: no GSO super-frames, no checksums left for an offload).
//!
//! ```ignore
//! mod common;
//! use common::netns::{self, Lab};
//!
//! #[test]
//! fn my_live_test() {
//!     if let Some(why) = netns::missing_prerequisite(&["curl", "python3"]) {
//!         return netns::skip("my_live_test", &why); // fails instead when CI=true
//!     }
//!     netns::delete_stale_namespaces();
//!     let mut lab = Lab::new("x");                  // unique tag per test
//!     let c = lab.add_ns("c");                      // "p4lt-PID-xc"
//!     let d = lab.add_ns("d");
//!     lab.veth((&c, "c0", "02:00:0a:4d:01:02"), (&d, "d0", "02:00:0a:4d:01:01"));
//!     netns::must(netns::in_ns(&c, &["ip", "addr", "add", "10.77.1.2/24", "dev", "c0"]), "addr");
//!     let ix = lab.spawn(&d, &[netns::BIN, "run", ...], &[], "switch"); // switch.out / switch.err
//!     // ... drop(lab) or end of scope: everything is removed
//! }
//! ```
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::Duration;

/// The p4lite binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_p4lite");

/// Longest time any single command may take (seconds) before `timeout` kills it.
pub const COMMAND_TIMEOUT: &str = "30";

/// Runs `argv` under `timeout` (so no command can hang the test), with no
/// proxy variables in its environment.
pub fn run(argv: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=2").arg(COMMAND_TIMEOUT).args(argv).stdin(Stdio::null());
    // A proxy from the environment must never see the tests' requests.
    for v in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(v);
    }
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {argv:?}: {e}"),
    }
}

/// Runs `argv` inside namespace `ns` (bounded like [`run`]).
pub fn in_ns(ns: &str, argv: &[&str]) -> Output {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(argv);
    run(&full)
}

/// Exit status, stdout and stderr of `o`, for failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The stdout of `o` as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that a setup command succeeded; returns its output.
pub fn must(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what} failed:\n{}", text(&o));
    o
}

/// Why a live test cannot run here, if it cannot: not root, `ip`,
/// `ethtool` or `timeout` missing, one of `tools` missing, or `ip netns add`
/// refused.
pub fn missing_prerequisite(tools: &[&str]) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("not running as root".into());
    }
    for tool in ["ip", "ethtool", "timeout"].iter().chain(tools) {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    // Tests of one binary run in parallel threads: one probe name per call.
    static PROBES: AtomicUsize = AtomicUsize::new(0);
    let probe = format!("p4lt-{}-probe{}", std::process::id(), PROBES.fetch_add(1, Ordering::Relaxed));
    let added = run(&["ip", "netns", "add", &probe]);
    let _ = run(&["ip", "netns", "del", &probe]);
    if !added.status.success() {
        return Some(format!("`ip netns add` does not work here: {}", String::from_utf8_lossy(&added.stderr).trim()));
    }
    None
}

/// Skips test `name` (printing why) or, in CI (`CI=true`), fails it.
pub fn skip(name: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} cannot run in CI: {why}");
    }
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {name}: {why} (this test needs root and ip netns; it fails instead of skipping when CI=true)"
    );
}

/// Deletes namespaces left by earlier runs that were killed before their
/// guard ran (`p4lt-PID-…` whose PID is gone).
pub fn delete_stale_namespaces() {
    let list = run(&["ip", "netns", "list"]);
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix("p4lt-").and_then(|r| r.split('-').next()) else { continue };
        if pid.chars().all(|c| c.is_ascii_digit()) && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

/// Calls `done` up to `tries` times, sleeping `every` between calls; true
/// as soon as it returns true.
pub fn wait_until(tries: u32, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    for i in 0..tries {
        if done() {
            return true;
        }
        if i + 1 < tries {
            sleep(every);
        }
    }
    false
}

/// `p4lite ctl SOCK words...` (10 s timeout): (exit code, stdout, stderr).
pub fn ctl(sock: &Path, words: &[&str]) -> (i32, String, String) {
    let s = sock.display().to_string();
    let mut argv = vec![BIN, "ctl", "--timeout", "10", s.as_str()];
    argv.extend_from_slice(words);
    let o = run(&argv);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// One end of a veth pair: (namespace, interface name, MAC address; `""`
/// lets the kernel choose the MAC).
pub type End<'a> = (&'a str, &'a str, &'a str);

/// Namespaces, processes and a scratch directory, removed on drop (module docs).
pub struct Lab {
    /// `p4lt-PID-TAG`: the prefix of every namespace and of the scratch directory.
    pub prefix: String,
    /// The scratch directory (output files of spawned processes, configs).
    pub dir: PathBuf,
    /// Processes started with [`Lab::spawn`], in order.
    pub children: Vec<Child>,
    /// Namespaces created with [`Lab::add_ns`].
    pub created: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.created {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// An empty lab with a fresh scratch directory; `tag` keeps concurrent
    /// tests of one binary apart (each test its own tag).
    pub fn new(tag: &str) -> Lab {
        let prefix = format!("p4lt-{}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let lab = Lab { prefix, dir, children: Vec::new(), created: Vec::new() };
        let _ = fs::remove_dir_all(&lab.dir);
        if let Err(e) = fs::create_dir_all(&lab.dir) {
            panic!("cannot create {}: {e}", lab.dir.display());
        }
        lab
    }

    /// The name of namespace `suffix` of this lab (`p4lt-PID-TAGSUFFIX`).
    pub fn ns_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Creates namespace `suffix` (IPv6 off so no router solicitations or
    /// DAD frames appear, `lo` up) and returns its name.
    pub fn add_ns(&mut self, suffix: &str) -> String {
        let ns = self.ns_name(suffix);
        must(run(&["ip", "netns", "add", &ns]), "ip netns add");
        self.created.push(ns.clone());
        must(
            in_ns(&ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]),
            "disable IPv6",
        );
        must(in_ns(&ns, &["ip", "link", "set", "lo", "up"]), "lo up");
        ns
    }

    /// Creates a veth pair between two ends (created in `a`'s namespace,
    /// the peer moved into `b`'s), turns their offloads off and brings both up.
    pub fn veth(&self, a: End, b: End) {
        let mut argv = vec!["ip", "-n", a.0, "link", "add", a.1];
        if !a.2.is_empty() {
            argv.extend(["address", a.2]);
        }
        argv.extend(["type", "veth", "peer", "name", b.1]);
        if !b.2.is_empty() {
            argv.extend(["address", b.2]);
        }
        argv.extend(["netns", b.0]);
        must(run(&argv), &format!("veth {}-{}", a.1, b.1));
        for (ns, dev) in [(a.0, a.1), (b.0, b.1)] {
            offloads_off(ns, dev);
            must(in_ns(ns, &["ip", "link", "set", dev, "up"]), "link up");
        }
    }

    /// Creates bridge `name` in namespace `ns` (no STP, so ports forward at
    /// once; offloads off) and brings it up.
    pub fn bridge(&self, ns: &str, name: &str) {
        #[rustfmt::skip]
        must(in_ns(ns, &["ip", "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"]), "bridge");
        offloads_off(ns, name);
        must(in_ns(ns, &["ip", "link", "set", name, "up"]), "bridge up");
    }

    /// Makes interface `dev` of namespace `ns` a port of bridge `bridge` (same namespace).
    pub fn enslave(&self, ns: &str, dev: &str, bridge: &str) {
        must(in_ns(ns, &["ip", "link", "set", dev, "master", bridge]), "bridge port");
    }

    /// Path of a file in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `text` to scratch file `name` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Err(e) = fs::write(&path, text) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    /// Starts `argv` in namespace `ns` with stdout and stderr in scratch
    /// files `LABEL.out` and `LABEL.err`; returns its index in `children`.
    /// The process is killed when the lab is dropped.
    pub fn spawn(&mut self, ns: &str, argv: &[&str], env: &[(&str, &str)], label: &str) -> usize {
        let out = fs::File::create(self.dir.join(format!("{label}.out")));
        let err = fs::File::create(self.dir.join(format!("{label}.err")));
        let (Ok(out), Ok(err)) = (out, err) else { panic!("cannot create output files for {label}") };
        // `ip netns exec` execs the command: the child's pid is the command's.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).args(argv).envs(env.iter().copied());
        for v in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
            cmd.env_remove(v);
        }
        match cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn() {
            Ok(c) => {
                self.children.push(c);
                self.children.len() - 1
            }
            Err(e) => panic!("cannot start {argv:?}: {e}"),
        }
    }

    /// What the process spawned with `label` wrote so far to `stream` (`"out"` or `"err"`).
    pub fn output_of(&self, label: &str, stream: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{label}.{stream}"))).unwrap_or_default()
    }

    /// True while child `ix` runs.
    pub fn running(&mut self, ix: usize) -> bool {
        matches!(self.children[ix].try_wait(), Ok(None))
    }

    /// Sends `signal` (`"TERM"`, `"INT"`, `"KILL"`, ...) to child `ix` and
    /// waits at most `secs` seconds for it to exit; returns whether it exited 0.
    /// Panics if it is still running then.
    pub fn signal_and_wait(&mut self, ix: usize, signal: &str, secs: u32) -> bool {
        // The shell's builtin `kill`: no procps needed.
        let cmd = format!("kill -{signal} {}", self.children[ix].id());
        must(run(&["sh", "-c", &cmd]), "kill");
        self.wait_exit(ix, secs)
    }

    /// Waits at most `secs` seconds for child `ix` to exit; returns whether
    /// it exited 0. Panics if it is still running then.
    pub fn wait_exit(&mut self, ix: usize, secs: u32) -> bool {
        for _ in 0..secs * 10 {
            if let Ok(Some(st)) = self.children[ix].try_wait() {
                return st.success();
            }
            sleep(Duration::from_millis(100));
        }
        panic!("child {ix} did not exit within {secs} s");
    }

    /// Starts `p4lite run ARGS... --ctl SOCK` in namespace `ns` (output in
    /// `LABEL.out`/`.err`) and waits (bounded, 10 s) for its control socket;
    /// returns (child index, socket path).
    pub fn start_switch(&mut self, ns: &str, args: &[&str], env: &[(&str, &str)], label: &str) -> (usize, PathBuf) {
        let sock = self.dir.join(format!("{label}.sock"));
        let s = sock.display().to_string();
        let mut argv = vec![BIN, "run"];
        argv.extend_from_slice(args);
        argv.extend(["--ctl", s.as_str()]);
        let ix = self.spawn(ns, &argv, env, label);
        for _ in 0..200 {
            if sock.exists() {
                return (ix, sock);
            }
            if let Ok(Some(st)) = self.children[ix].try_wait() {
                panic!("the switch exited early ({st}):\n{}", self.output_of(label, "err"));
            }
            sleep(Duration::from_millis(50));
        }
        panic!("the switch's control socket did not appear in 10 s:\n{}", self.output_of(label, "err"));
    }
}

/// Turns off the offloads of `dev` in `ns`: senders must put whole,
/// checksummed frames on the wire, because the switch forwards exactly what
/// it reads.
pub fn offloads_off(ns: &str, dev: &str) {
    must(in_ns(ns, &["ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]), "ethtool");
}

/// The CPU seconds (user + system) in a live report's first line.
pub fn cpu_seconds(report: &str) -> f64 {
    let line = report.lines().find(|l| l.starts_with("Live: ")).unwrap_or("");
    let num = |tag: &str| -> f64 {
        let Some(i) = line.find(tag) else { return 0.0 };
        line[..i].trim_end().rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0.0)
    };
    num(" s user") + num(" s system")
}
