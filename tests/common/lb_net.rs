//! The networks of the live director tests (`live_lb`, `live_health`):
//! namespaces, addresses, real servers running a small HTTP server, the
//! director started on them, and the helpers that read its listings.
//!
//! VS/NAT and VS/TUN ([`Net::two_armed`]); `────` is a veth pair, br0 a
//! bridge in the director namespace:
//!
//! ```text
//!  client ns (…c)       director ns (…d)                                   server ns (…s1 … s4)
//!  c0 10.77.1.2/24 ──── d0 [port 0] ─ p4lite ─ [port 1] d1 ──── d1b ─┐
//!                                                               br0 ├─ vs1 ──── s0 10.78.1.11/24
//!                                                                   ├─ vs2 ──── s0 10.78.1.12/24
//!                                                                   ├─ vs3 ──── s0 10.78.1.13/24
//!                                                                   └─ vs4 ──── s0 10.78.1.14/24
//! ```
//! The addresses of the director are p4lite's, not the kernel's (d0, d1
//! and br0 have none): port 0 10.77.1.1/24 and the VIP 10.77.100.1, port 1
//! 10.78.1.1/24; p4lite answers ARP for them. The client routes
//! 10.77.100.0/24 via 10.77.1.1; the servers' default route is 10.78.1.1
//! (NAT replies must pass the director). A test asks for as many servers
//! as it needs (`s4` only where it adds one live).
//!
//! VS/DR ([`Net::one_segment`]), one L2 segment (a bridge in the director
//! namespace):
//!
//! ```text
//!  client c0 10.77.1.2 ─ vc ┐
//!  p4lite [port 0] d0 ─ d0b ┤ br0     director: 10.77.1.1/24 and VIP 10.77.1.100 (p4lite's)
//!  s1 s0 10.77.1.11 ─ vs1 ──┤         servers: VIP 10.77.1.100/32 on lo,
//!  s2 s0 10.77.1.12 ─ vs2 ──┤                  arp_ignore=1, arp_announce=2 (spec 3.3)
//!  s3 s0 10.77.1.13 ─ vs3 ──┘
//! ```
//!
//! The servers run a small Python HTTP server ([`HTTP_SERVER`]) that
//! answers `GET /` with a 3200-byte body naming the server (several TCP
//! segments per response, so a NAT that mangles anything after the first
//! segment is caught); the client runs `curl`, one new connection per
//! request ([`Net::get`]). MAC addresses are fixed: the director has no ARP
//! resolver, its `neigh` lines name them. The addresses exist only inside
//! the namespaces, which have no route out.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::netns::{self, ctl, delete_stale_namespaces, in_ns, must, stdout, text, wait_until, Lab};

/// The director's P4 program.
pub const LB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/programs/lb.p4lite");

/// The client (NAT, TUN and DR).
pub const C_IP: &str = "10.77.1.2";
/// The client's MAC address.
pub const C_MAC: &str = "02:00:0a:4d:01:02";
/// The director's port 0 (client side; in DR the only port).
pub const D0_IP: &str = "10.77.1.1";
pub const D0_MAC: &str = "02:00:0a:4d:01:01";
/// The director's port 1 (server LAN; NAT and TUN).
pub const D1_IP: &str = "10.78.1.1";
pub const D1_MAC: &str = "02:00:0a:4e:01:01";
/// The virtual address of the NAT and TUN services (routed via port 0).
pub const VIP: &str = "10.77.100.1";
/// The virtual address of the DR service (on the one segment).
pub const DR_VIP: &str = "10.77.1.100";

/// The HTTP server of a real server: `ARGV = ADDR PORT NAME DELAY`;
/// answers every GET with [`body`]`(NAME)`, pausing DELAY seconds after the
/// first half (so a connection is surely open when a test acts on it), logs
/// each request on stderr (before answering), prints `ready` once it
/// listens. `TCP_NODELAY`: the response goes out whole whether or not the
/// client's ACKs arrive. (Not `python3 -m http.server`: its HTTPServer
/// looks its own name up in the DNS, which must not leave the namespace.)
pub const HTTP_SERVER: &str = r#"
import http.server, socketserver, sys
import time
addr, port, name, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
body = ''.join('%s %04d\n' % (name, i) for i in range(400)).encode()
class H(http.server.BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # TCP_NODELAY: the second half leaves without waiting for an ACK
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body[:1600])
        time.sleep(delay)
        self.wfile.write(body[1600:])
socketserver.TCPServer.allow_reuse_address = True
srv = socketserver.TCPServer((addr, port), H)
print('ready', flush=True)
srv.serve_forever()
"#;

/// What server `name` answers (see [`HTTP_SERVER`]).
pub fn body(name: &str) -> String {
    (0..400).map(|i| format!("{name} {i:04}\n")).collect()
}

/// A real server of a test network.
pub struct Server {
    /// Its name (`s1`…), also the body it answers with.
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its address (on `s0`).
    pub ip: String,
    /// The MAC address of its `s0`.
    pub mac: String,
}

impl Server {
    /// Real server `i`: namespace `sI`, address `NET.(10+i)/24` and MAC
    /// `MAC_PREFIX:(0x10+i)` on its `s0`, whose veth peer `vsI` is a port of
    /// `br0` in the director namespace; `route` as for [`host`].
    fn on_bridge(lab: &mut Lab, director: &str, i: usize, net: &str, mac_prefix: &str, route: &[&str]) -> Server {
        let s = Server {
            name: format!("s{i}"),
            ns: lab.add_ns(&format!("s{i}")),
            ip: format!("{net}.{}", 10 + i),
            mac: format!("{mac_prefix}:{:02x}", 0x10 + i),
        };
        let port = format!("vs{i}");
        lab.veth((&s.ns, "s0", &s.mac), (director, &port, ""));
        lab.enslave(director, &port, "br0");
        host(&s.ns, "s0", &format!("{}/24", s.ip), route);
        s
    }
}

/// A test network: the lab, the client and director namespaces, the real
/// servers, and (once started) the switch and its control socket.
pub struct Net {
    /// Everything created (removed on drop).
    pub lab: Lab,
    /// The client's namespace.
    pub client: String,
    /// The director's namespace.
    pub director: String,
    /// The real servers, `s1` first.
    pub servers: Vec<Server>,
    /// The switch's control socket (once started).
    pub sock: PathBuf,
    /// When the network was built (for [`Net::phase`]).
    pub started: Instant,
    /// The test's name (for [`Net::phase`]).
    pub name: &'static str,
}

/// Why the tests cannot run here, if they cannot; prints the notice (or
/// fails in CI) and returns true when the caller must return.
pub fn cannot_run(name: &str, tools: &[&str]) -> bool {
    match netns::missing_prerequisite(tools) {
        Some(why) => {
            netns::skip(name, &why);
            true
        }
        None => {
            delete_stale_namespaces();
            false
        }
    }
}

impl Net {
    /// Prints `what` with the time since the network was built (progress
    /// in a failed test's output).
    pub fn phase(&self, what: &str) {
        eprintln!("{}: {:5.1} s {what}", self.name, self.started.elapsed().as_secs_f64());
    }

    /// The NAT/TUN network of the module docs with `n` real servers
    /// (`s1`…`sN` at 10.78.1.11…). Not started.
    pub fn two_armed(tag: &str, name: &'static str, n: usize) -> Net {
        let started = Instant::now();
        let mut lab = Lab::new(tag);
        let client = lab.add_ns("c");
        let director = lab.add_ns("d");
        lab.veth((&client, "c0", C_MAC), (&director, "d0", D0_MAC));
        lab.bridge(&director, "br0");
        lab.veth((&director, "d1", D1_MAC), (&director, "d1b", ""));
        lab.enslave(&director, "d1b", "br0");
        host(&client, "c0", &format!("{C_IP}/24"), &["10.77.100.0/24", "via", D0_IP]);
        let mut servers = Vec::new();
        for i in 1..=n {
            // NAT: the replies must go back through the director.
            servers.push(Server::on_bridge(
                &mut lab,
                &director,
                i,
                "10.78.1",
                "02:00:0a:4e:01",
                &["default", "via", D1_IP],
            ));
        }
        Net { lab, client, director, servers, sock: PathBuf::new(), started, name }
    }

    /// The DR network of the module docs (one segment) with three real servers.
    pub fn one_segment(tag: &str, name: &'static str) -> Net {
        let started = Instant::now();
        let mut lab = Lab::new(tag);
        let client = lab.add_ns("c");
        let director = lab.add_ns("d");
        lab.bridge(&director, "br0");
        lab.veth((&client, "c0", C_MAC), (&director, "vc", ""));
        lab.enslave(&director, "vc", "br0");
        lab.veth((&director, "d0", D0_MAC), (&director, "d0b", ""));
        lab.enslave(&director, "d0b", "br0");
        host(&client, "c0", &format!("{C_IP}/24"), &[]);
        let mut servers = Vec::new();
        for i in 1..=3 {
            let s = Server::on_bridge(&mut lab, &director, i, "10.77.1", "02:00:0a:4d:01", &[]);
            // Spec 3.3: the VIP on the loopback, never announced or answered in ARP.
            must(in_ns(&s.ns, &["ip", "addr", "add", &format!("{DR_VIP}/32"), "dev", "lo"]), "VIP on lo");
            #[rustfmt::skip]
            must(in_ns(&s.ns, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
                                "net.ipv4.conf.s0.arp_ignore=1", "net.ipv4.conf.s0.arp_announce=2"]), "arp sysctls");
            servers.push(s);
        }
        Net { lab, client, director, servers, sock: PathBuf::new(), started, name }
    }

    /// The `neigh` lines of lb.conf: the client and every server.
    pub fn neigh_lines(&self) -> String {
        let mut s = format!("neigh {C_IP} mac {C_MAC}\n");
        for srv in &self.servers {
            s += &format!("neigh {} mac {}\n", srv.ip, srv.mac);
        }
        s
    }

    /// Starts `p4lite run lb.p4lite` with `conf` as lb.conf on `ports`
    /// (`["0=d0", "1=d1"]`) and waits for its control socket.
    pub fn start_director(&mut self, conf: &str, ports: &[&str]) {
        let path = self.lab.write("lb.conf", conf).display().to_string();
        let mut args = vec![LB, "--ipvs", path.as_str()];
        for p in ports {
            args.extend(["--iface", p]);
        }
        let d = self.director.clone();
        let (_, sock) = self.lab.start_switch(&d, &args, &[], "switch");
        self.sock = sock;
    }

    /// Starts the HTTP servers of `servers[ix]` on `addr:port` (`addr`
    /// `None`: the server's own address), each response paused `delay`
    /// seconds in the middle, and waits until all listen.
    pub fn start_http(&mut self, which: &[usize], addr: Option<&str>, port: u16, delay: &str) {
        self.start_servers(HTTP_SERVER, which, addr, port, delay);
    }

    /// Like [`Net::start_http`] with another Python `script` taking the
    /// same arguments (`ADDR PORT NAME DELAY`, printing `ready` once it
    /// listens); output in `http-NAME.out`/`.err`. Returns the servers'
    /// child indices in the lab, in the order of `which`.
    pub fn start_servers(
        &mut self,
        script: &str,
        which: &[usize],
        addr: Option<&str>,
        port: u16,
        delay: &str,
    ) -> Vec<usize> {
        let port = port.to_string();
        let mut children = Vec::new();
        for &i in which {
            let s = &self.servers[i];
            let (ns, a, name) = (s.ns.clone(), addr.unwrap_or(&s.ip).to_string(), s.name.clone());
            let argv = ["python3", "-c", script, &a, &port, &name, delay];
            children.push(self.lab.spawn(&ns, &argv, &[], &format!("http-{name}")));
        }
        for &i in which {
            let label = format!("http-{}", self.servers[i].name);
            let up = wait_until(100, Duration::from_millis(50), || self.lab.output_of(&label, "out").contains("ready"));
            assert!(up, "HTTP server {label} did not start:\n{}", self.lab.output_of(&label, "err"));
        }
        children
    }

    /// One `GET url` with curl from the client (a new connection):
    /// Ok(the server's name) for a complete 200 response with one of the
    /// expected bodies, Err(what went wrong) otherwise.
    pub fn get(&self, url: &str) -> Result<String, String> {
        #[rustfmt::skip]
        let o = in_ns(&self.client, &["curl", "-sS", "--noproxy", "*", "--connect-timeout", "3", "--max-time", "5",
                                      "-w", "\n%{http_code}", url]);
        check_response(&o, &self.servers)
    }

    /// `p4lite ctl SOCK words...`, asserted to succeed; returns its stdout.
    pub fn ctl(&self, words: &[&str]) -> String {
        let (code, out, err) = ctl(&self.sock, words);
        assert_eq!(code, 0, "p4lite ctl {words:?} failed: {err}\n{out}");
        out
    }

    /// Connections per real server (`ADDR:PORT` → Conns) of `-Ln --stats`.
    pub fn conns(&self) -> (BTreeMap<String, u64>, String) {
        let listing = self.ctl(&["-Ln", "--stats"]);
        (dest_column(&listing, 1), listing)
    }
}

/// Addresses `dev` of `ns` and adds `route` (if not empty) through it; the
/// hosts learn the director's MAC by ARP (p4lite answers it).
pub fn host(ns: &str, dev: &str, addr: &str, route: &[&str]) {
    must(in_ns(ns, &["ip", "addr", "add", addr, "dev", dev]), "address");
    if !route.is_empty() {
        let mut argv = vec!["ip", "route", "add"];
        argv.extend_from_slice(route);
        argv.extend(["dev", dev]);
        must(in_ns(ns, &argv), "route");
    }
}

/// Checks one curl output (`-w "\n%{http_code}"`): Ok(server name) when
/// curl succeeded, the code is 200 and the body is exactly one server's.
pub fn check_response(o: &std::process::Output, servers: &[Server]) -> Result<String, String> {
    let out = stdout(o);
    if !o.status.success() {
        return Err(format!("curl failed: {}", text(o)));
    }
    let Some((got, code)) = out.rsplit_once('\n') else { return Err(format!("no status line: {out:?}")) };
    if code != "200" {
        return Err(format!("HTTP status {code}"));
    }
    let name = got.split(' ').next().unwrap_or("");
    match servers.iter().find(|s| s.name == name) {
        Some(s) if got == body(&s.name) => Ok(s.name.clone()),
        Some(_) => Err(format!("incomplete or corrupt body from {name}: {} bytes", got.len())),
        None => Err(format!("unexpected body: {:?}", &got[..got.len().min(80)])),
    }
}

/// Column `col` (1: Conns, 2: InPkts, 3: OutPkts, …) of the real-server
/// rows (`  -> ADDR:PORT n n n n n`) of an ipvsadm `--stats` listing.
pub fn dest_column(listing: &str, col: usize) -> BTreeMap<String, u64> {
    listing
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "->").then_some(())?;
            let dest = w.next()?.to_string();
            let n = w.nth(col - 1)?.parse().ok()?;
            Some((dest, n))
        })
        .collect()
}

/// The real servers of an `-Ln` listing, with their weights (the column
/// after `Forward`).
pub fn dests(listing: &str) -> BTreeMap<String, u64> {
    dest_column(listing, 2)
}

/// How many times each name occurs.
pub fn tally<'a>(names: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(n.clone()).or_insert(0) += 1;
    }
    m
}

/// `n` requests to `url`, each a new connection; every one must be a
/// complete 200 response. Returns the names in order.
pub fn fetch_all(net: &Net, url: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match net.get(url) {
            Ok(name) => name,
            Err(e) => {
                panic!("request {i} of {n} to {url} failed: {e}\nswitch:\n{}", net.lab.output_of("switch", "err"))
            }
        })
        .collect()
}

/// The lb.conf of a NAT service on [`VIP`]:80 with scheduler `sched` over
/// `servers` (added in order, with their weights) on port 8080.
pub fn nat_conf(net: &Net, sched: &str, weights: &[(usize, u32)]) -> String {
    let mut conf = format!(
        "port 0 name d0 mac {D0_MAC} addr {D0_IP}/24 addr {VIP}/32\n\
         port 1 name d1 mac {D1_MAC} addr {D1_IP}/24\n{}\
         -A -t {VIP}:80 -s {sched}\n",
        net.neigh_lines()
    );
    for &(i, w) in weights {
        conf += &format!("-a -t {VIP}:80 -r {}:8080 -m -w {w}\n", net.servers[i].ip);
    }
    conf
}

/// Helpers of the live benchmark (`bench_live_lb_veth` in `live_lb`).
impl Net {
    /// Like [`Net::start_director`], with extra environment variables for
    /// the switch (`P4LITE_LIVE_IO=pnet`, say); returns the switch's child
    /// index in the lab (to stop it with [`Lab::signal_and_wait`]).
    pub fn start_director_env(&mut self, conf: &str, ports: &[&str], env: &[(&str, &str)]) -> usize {
        let path = self.lab.write("lb.conf", conf).display().to_string();
        let mut args = vec![LB, "--ipvs", path.as_str()];
        for p in ports {
            args.extend(["--iface", p]);
        }
        let d = self.director.clone();
        let (ix, sock) = self.lab.start_switch(&d, &args, env, "switch");
        self.sock = sock;
        ix
    }

    /// Pins each server's MAC to its port of br0 (a static forwarding
    /// entry). A server that has sent nothing is otherwise unknown to the
    /// bridge, which floods the frames for it to every port: each server's
    /// `s0` would also count the others' frames.
    pub fn pin_server_macs(&self) {
        for (i, s) in self.servers.iter().enumerate() {
            let port = format!("vs{}", i + 1);
            #[rustfmt::skip]
            must(in_ns(&self.director, &["bridge", "fdb", "replace", &s.mac, "dev", &port, "master", "static"]), "bridge fdb");
        }
    }

    /// Frames received so far on each server's `s0` (`rx_packets`), `s1` first.
    pub fn server_rx(&self) -> Vec<u64> {
        self.servers
            .iter()
            .map(|s| {
                let o = in_ns(&s.ns, &["cat", "/sys/class/net/s0/statistics/rx_packets"]);
                stdout(&o).trim().parse().unwrap_or(0)
            })
            .collect()
    }
}
