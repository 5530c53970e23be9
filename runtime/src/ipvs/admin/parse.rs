//! One ipvsadm command line → one checked [`AdminCmd`] (spec 4.1).
//!
//! This reproduces ipvsadm 1.31's `parse_options()` and `process_options()`:
//! popt's option syntax (short clusters `-Lnc`, `-w5`, `--weight=5`,
//! `--weight 5`, the optional argument of `-p`), the command/option
//! compatibility matrix, the defaults (scheduler wlc, `-g`, weight 1,
//! `-p` = 360 s, mask /32) and the validations, with ipvsadm's error
//! messages word for word. Checks the kernel would make that do not depend
//! on the current table (unknown scheduler, a real server address that is
//! not unicast) are made here too, so a bad file is rejected before any of
//! it is applied.
//!
//! Differences from ipvsadm, all deliberate:
//! - The command may stand anywhere on the line (ipvsadm wants it first),
//!   and a second command is reported as "multiple commands specified".
//! - Options whose meaning depends on other options are resolved after the
//!   whole line is read, so their order never matters: `-r` without a port
//!   takes the service port even if `-t` comes later (ipvsadm would copy
//!   port 0), `-b` is checked against the final `-s`.
//! - Host names are not resolved: addresses are numeric, exactly as
//!   `inet_aton`/`inet_pton` accept them (so `10.1` is 10.0.0.1 and
//!   `010.0.0.1` is 8.0.0.1, as in ipvsadm). Port names come from a small
//!   built-in copy of `/etc/services` ([`service_port`]).
//! - Not supported, each with its own message: fwmark services (`-f`,
//!   `-6`), IPv6 addresses (an IPv6 `--mcast-group` too), persistence
//!   engines (`--pe`), `-R`, `-h`, `-v`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::ipvs::sched::SchedKind;
use crate::ipvs::service::{
    DestConfig, FwdMethod, GueCsum, Protocol, ServiceConfig, ServiceKey, Tunnel, DEFAULT_PERSISTENT_TIMEOUT,
    SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
};
use crate::ipvs::sync::{DaemonKind, DaemonRequest};

/// `MAX_TIMEOUT` of ipvsadm.c: 31 days, the largest `-p` and `--set` value.
pub const MAX_TIMEOUT: u32 = 86400 * 31;

/// The default scheduler (`DEF_SCHED`), used by `-A` and `-E` without `-s`.
pub const DEFAULT_SCHEDULER: SchedKind = SchedKind::Wlc;

/// The refusal of `-R` (lb.conf and `p4lite ctl` take the rules themselves).
const RESTORE_REFUSED: &str =
    "-R is not supported: give the rules themselves (lb.conf lines, or `p4lite ctl SOCKET < rules`, one per line)";

/// The refusal of `option` (`-h`, `-v`): not a rule or a listing.
fn not_a_rule(option: &str) -> String {
    format!(
        "{option} is not supported: p4lite takes ipvsadm rules and listings only (`p4lite ctl SOCKET help` lists them)"
    )
}

/// One checked ipvsadm command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCmd {
    /// `-A`: add a virtual service.
    AddService(ServiceConfig),
    /// `-E`: redefine a virtual service (every field, defaults included).
    EditService(ServiceConfig),
    /// `-D`: delete a virtual service.
    DeleteService(ServiceKey),
    /// `-C`: delete every virtual service.
    Clear,
    /// `-a`: add a real server to a service.
    AddDest(ServiceKey, DestConfig),
    /// `-e`: change a real server (every field, defaults included).
    EditDest(ServiceKey, DestConfig),
    /// `-d`: delete the real server `addr:port` of a service.
    DeleteDest(ServiceKey, Ipv4Addr, u16),
    /// `-Z`: zero the counters of one service, or of all.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp`.
    SetTimeouts(TimeoutUpdate),
    /// `-L` / `-l`.
    List(ListRequest),
    /// `-S`: print the table as ipvsadm command lines.
    Save(ListFormat),
    /// `--start-daemon master|backup` and its options.
    StartDaemon(DaemonRequest),
    /// `--stop-daemon master|backup`.
    StopDaemon(DaemonKind),
}

/// `--set tcp tcpfin udp` in seconds; 0 leaves that timeout unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimeoutUpdate {
    /// ESTABLISHED timeout.
    pub tcp: u32,
    /// FIN_WAIT timeout.
    pub tcp_fin: u32,
    /// UDP timeout.
    pub udp: u32,
}

/// What `-L` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListWhat {
    /// Every service, with the banner.
    All,
    /// One service (`-L -t vip:port`), without the banner.
    Service(ServiceKey),
    /// The connection table (`-c`).
    Connections,
    /// The three timeouts (`--timeout`).
    Timeouts,
    /// The sync daemons (`--daemon`).
    Daemons,
}

/// The listing switches (ipvsadm's `FMT_*` bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ListFormat {
    /// `-n`. Listings are always numeric here (names are never resolved);
    /// kept so a request round-trips.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`: services and dests in table order.
    pub nosort: bool,
    /// `--exact` / `-X`: full numbers instead of K/M/G/T.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
}

/// A `-L` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRequest {
    /// What to list.
    pub what: ListWhat,
    /// How.
    pub format: ListFormat,
}

/// The commands of ipvsadm, in its `CMD_*` order (the index is the row of
/// the compatibility matrix; the name is ipvsadm's `cmdnames[]` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    /// ipvsadm's `cmdnames[]`, used in its messages (`-C` is "flush").
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }

    /// The row of `commands_v_options[]`: one character per [`Opt`], `+`
    /// compulsory, `x` illegal, `1` exclusive, `.` optional.
    fn matrix_row(self) -> &'static [u8; NUMBER_OF_OPT] {
        // Columns: -n -c svc -s -p -M -r fwd -w -x -y mcast timeout daemon
        // stats rate thr pconn nosort syncid exact ops pe -b group port ttl
        // maxlen tuninfo tuntype tunport nocsum csum remcsum.
        match self {
            Cmd::Add | Cmd::Edit => b"xx+...xxxxxxxxxxxxxxx...xxxxxxxxxx",
            Cmd::Del => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Timeout | Cmd::Restore => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b".11xxxxxxxxx11.......xxxxxxx.xxxxx",
            Cmd::AddDest | Cmd::EditDest => b"xx+xxx+....xxxxxxxxxxxxxxxxxx.....",
            Cmd::DelDest => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => b"xxxxxxxxxxx.xxxxxxx.xxxx....xxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxx",
            Cmd::Save => b".xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// Number of option columns in the matrix (`NUMBER_OF_OPT`).
const NUMBER_OF_OPT: usize = 34;

/// ipvsadm's option classes (`OPTC_*`), in matrix column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Mcast,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    OnePacket,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// ipvsadm's `optnames[]`, indexed by [`Opt`].
const OPT_NAMES: [&str; NUMBER_OF_OPT] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// What a recognised option token means (popt's `val`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Command(Cmd),
    Help,
    Version,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Masq,
    Ipip,
    Gate,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// Whether an option takes an argument (popt's `argInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArgKind {
    None,
    Required,
    /// `POPT_ARGFLAG_OPTIONAL`: the next word is the argument unless it
    /// starts with `-`.
    Optional,
}

/// One row of ipvsadm's popt `options_table`.
struct OptDef {
    long: &'static str,
    short: Option<char>,
    arg: ArgKind,
    key: Key,
}

const fn def(long: &'static str, short: Option<char>, arg: ArgKind, key: Key) -> OptDef {
    OptDef { long, short, arg, key }
}

/// ipvsadm's options table (both `-L` and `-l` are `--list`).
const OPTIONS: &[OptDef] = &[
    def("add-service", Some('A'), ArgKind::None, Key::Command(Cmd::Add)),
    def("edit-service", Some('E'), ArgKind::None, Key::Command(Cmd::Edit)),
    def("delete-service", Some('D'), ArgKind::None, Key::Command(Cmd::Del)),
    def("clear", Some('C'), ArgKind::None, Key::Command(Cmd::Flush)),
    def("list", Some('L'), ArgKind::None, Key::Command(Cmd::List)),
    def("list", Some('l'), ArgKind::None, Key::Command(Cmd::List)),
    def("zero", Some('Z'), ArgKind::None, Key::Command(Cmd::Zero)),
    def("add-server", Some('a'), ArgKind::None, Key::Command(Cmd::AddDest)),
    def("edit-server", Some('e'), ArgKind::None, Key::Command(Cmd::EditDest)),
    def("delete-server", Some('d'), ArgKind::None, Key::Command(Cmd::DelDest)),
    def("set", None, ArgKind::None, Key::Command(Cmd::Timeout)),
    def("help", Some('h'), ArgKind::None, Key::Help),
    def("version", Some('v'), ArgKind::None, Key::Version),
    def("restore", Some('R'), ArgKind::None, Key::Command(Cmd::Restore)),
    def("save", Some('S'), ArgKind::None, Key::Command(Cmd::Save)),
    def("start-daemon", None, ArgKind::Required, Key::Command(Cmd::StartDaemon)),
    def("stop-daemon", None, ArgKind::Required, Key::Command(Cmd::StopDaemon)),
    def("tcp-service", Some('t'), ArgKind::Required, Key::Tcp),
    def("udp-service", Some('u'), ArgKind::Required, Key::Udp),
    def("sctp-service", None, ArgKind::Required, Key::Sctp),
    def("fwmark-service", Some('f'), ArgKind::Required, Key::Fwmark),
    def("scheduler", Some('s'), ArgKind::Required, Key::Scheduler),
    def("persistent", Some('p'), ArgKind::Optional, Key::Persistent),
    def("netmask", Some('M'), ArgKind::Required, Key::Netmask),
    def("real-server", Some('r'), ArgKind::Required, Key::Server),
    def("masquerading", Some('m'), ArgKind::None, Key::Masq),
    def("ipip", Some('i'), ArgKind::None, Key::Ipip),
    def("gatewaying", Some('g'), ArgKind::None, Key::Gate),
    def("weight", Some('w'), ArgKind::Required, Key::Weight),
    def("u-threshold", Some('x'), ArgKind::Required, Key::UThreshold),
    def("l-threshold", Some('y'), ArgKind::Required, Key::LThreshold),
    def("numeric", Some('n'), ArgKind::None, Key::Numeric),
    def("connection", Some('c'), ArgKind::None, Key::Connection),
    def("mcast-interface", None, ArgKind::Required, Key::McastInterface),
    def("syncid", None, ArgKind::Required, Key::SyncId),
    def("timeout", None, ArgKind::None, Key::Timeout),
    def("daemon", None, ArgKind::None, Key::Daemon),
    def("stats", None, ArgKind::None, Key::Stats),
    def("rate", None, ArgKind::None, Key::Rate),
    def("thresholds", None, ArgKind::None, Key::Thresholds),
    def("persistent-conn", None, ArgKind::None, Key::PersistentConn),
    def("nosort", None, ArgKind::None, Key::NoSort),
    def("sort", None, ArgKind::None, Key::Sort),
    def("exact", Some('X'), ArgKind::None, Key::Exact),
    def("ipv6", Some('6'), ArgKind::None, Key::Ipv6),
    def("ops", Some('o'), ArgKind::None, Key::Ops),
    def("pe", None, ArgKind::Required, Key::Pe),
    def("sched-flags", Some('b'), ArgKind::Required, Key::SchedFlags),
    def("mcast-group", None, ArgKind::Required, Key::McastGroup),
    def("mcast-port", None, ArgKind::Required, Key::McastPort),
    def("mcast-ttl", None, ArgKind::Required, Key::McastTtl),
    def("sync-maxlen", None, ArgKind::Required, Key::SyncMaxlen),
    def("tun-info", None, ArgKind::None, Key::TunInfo),
    def("tun-type", None, ArgKind::Required, Key::TunType),
    def("tun-port", None, ArgKind::Required, Key::TunPort),
    def("tun-nocsum", None, ArgKind::None, Key::TunNocsum),
    def("tun-csum", None, ArgKind::None, Key::TunCsum),
    def("tun-remcsum", None, ArgKind::None, Key::TunRemcsum),
];

/// One item of the command line after popt-style splitting.
#[derive(Debug)]
enum Item<'a> {
    /// An option and its argument, if it has one.
    Opt { key: Key, arg: Option<&'a str> },
    /// A word that is not an option (only `--set` takes any).
    Arg(&'a str),
}

/// popt's option scanner over the words of one line. Errors carry popt's
/// wording: `WORD: unknown option`, `WORD: missing argument`.
struct Scanner<'a> {
    words: &'a [&'a str],
    next: usize,
    /// A short-option cluster being taken apart: (word, byte offset).
    cluster: Option<(&'a str, usize)>,
    /// After `--`, every word is an argument.
    only_args: bool,
}

impl<'a> Scanner<'a> {
    fn new(words: &'a [&'a str]) -> Scanner<'a> {
        Scanner { words, next: 0, cluster: None, only_args: false }
    }

    /// The next word, if any, for an option's required argument.
    fn take_word(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.next).copied();
        if w.is_some() {
            self.next += 1;
        }
        w
    }

    /// The next word if it can be an optional argument (does not start
    /// with `-`).
    fn take_optional_word(&mut self) -> Option<&'a str> {
        match self.words.get(self.next) {
            Some(w) if !w.starts_with('-') => self.take_word(),
            _ => None,
        }
    }

    fn next_item(&mut self) -> Option<Result<Item<'a>, String>> {
        if let Some((word, pos)) = self.cluster {
            return Some(self.short_option(word, pos));
        }
        let word = self.take_word()?;
        if self.only_args || !word.starts_with('-') || word == "-" {
            return Some(Ok(Item::Arg(word)));
        }
        if word == "--" {
            self.only_args = true;
            return self.next_item();
        }
        if let Some(long) = word.strip_prefix("--") {
            return Some(self.long_option(word, long));
        }
        self.cluster = Some((word, 1));
        self.next_item()
    }

    fn long_option(&mut self, word: &'a str, long: &'a str) -> Result<Item<'a>, String> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let def = OPTIONS.iter().find(|d| d.long == name).ok_or_else(|| format!("{word}: unknown option"))?;
        let arg = match def.arg {
            ArgKind::None if inline.is_some() => return Err(format!("{word}: option does not take an argument")),
            ArgKind::None => None,
            ArgKind::Required => {
                Some(inline.or_else(|| self.take_word()).ok_or_else(|| format!("{word}: missing argument"))?)
            }
            ArgKind::Optional => inline.or_else(|| self.take_optional_word()),
        };
        Ok(Item::Opt { key: def.key, arg })
    }

    fn short_option(&mut self, word: &'a str, pos: usize) -> Result<Item<'a>, String> {
        self.cluster = None;
        let rest = &word[pos..];
        let Some(c) = rest.chars().next() else {
            return Err(format!("{word}: unknown option"));
        };
        let after = &rest[c.len_utf8()..];
        let def = OPTIONS.iter().find(|d| d.short == Some(c)).ok_or_else(|| format!("{word}: unknown option"))?;
        let arg = match def.arg {
            ArgKind::None => {
                if !after.is_empty() {
                    self.cluster = Some((word, pos + c.len_utf8()));
                }
                None
            }
            // As in popt, the rest of the cluster is the argument if there
            // is any (`-w5`, `-p360`), else the next word.
            ArgKind::Required if !after.is_empty() => Some(after),
            ArgKind::Required => Some(self.take_word().ok_or_else(|| format!("{word}: missing argument"))?),
            ArgKind::Optional if !after.is_empty() => Some(after),
            ArgKind::Optional => self.take_optional_word(),
        };
        Ok(Item::Opt { key: def.key, arg })
    }
}

/// An address and optional port as `parse_service()` found them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HostPort {
    addr: IpAddr,
    port: Option<u16>,
}

/// Everything one line said, before the final checks (ipvsadm's
/// `struct ipvs_command_entry` plus the option bits).
struct Pending<'a> {
    cmd: Option<Cmd>,
    options: u64,
    proto: Protocol,
    service: Option<HostPort>,
    fwmark: bool,
    sched_name: Option<&'a str>,
    persistent: Option<u32>,
    netmask: Ipv4Addr,
    server: Option<HostPort>,
    fwd: FwdMethod,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    one_packet: bool,
    pe: Option<&'a str>,
    sched_flags_arg: Option<&'a str>,
    tun_type: TunType,
    tun_port: u16,
    format: ListFormat,
    args: Vec<&'a str>,
    daemon: Option<DaemonKind>,
    mcast_ifn: Option<&'a str>,
    syncid: u8,
    sync_maxlen: Option<u16>,
    mcast_group: Option<Ipv4Addr>,
    mcast_port: Option<u16>,
    mcast_ttl: Option<u8>,
}

/// `--tun-type` values (`IP_VS_CONN_F_TUNNEL_TYPE_*`); ipip is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TunType {
    Ipip,
    Gue,
    Gre,
}

impl TunType {
    fn name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue => "gue",
            TunType::Gre => "gre",
        }
    }

    /// `tunnel_types_v_options[]`: columns tun-port, tun-nocsum,
    /// tun-csum, tun-remcsum.
    fn matrix_row(self) -> &'static [u8; 4] {
        match self {
            TunType::Ipip => b"xxxx",
            TunType::Gue => b"+111",
            TunType::Gre => b"x11x",
        }
    }
}

impl<'a> Pending<'a> {
    fn new() -> Pending<'a> {
        Pending {
            cmd: None,
            options: 0,
            proto: Protocol::Tcp,
            service: None,
            fwmark: false,
            sched_name: None,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST,
            server: None,
            fwd: FwdMethod::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            one_packet: false,
            pe: None,
            sched_flags_arg: None,
            tun_type: TunType::Ipip,
            tun_port: 0,
            format: ListFormat::default(),
            args: Vec::new(),
            daemon: None,
            mcast_ifn: None,
            syncid: 0,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }

    fn has(&self, opt: Opt) -> bool {
        self.options & (1 << opt as u8) != 0
    }

    /// `set_option()`: each option class at most once.
    fn set_option(&mut self, opt: Opt) -> Result<(), String> {
        if self.has(opt) {
            return Err(format!("multiple '{}' options specified", OPT_NAMES[opt as usize]));
        }
        self.options |= 1 << opt as u8;
        Ok(())
    }

    fn set_command(&mut self, cmd: Cmd) -> Result<(), String> {
        if self.cmd.is_some() {
            return Err("multiple commands specified".to_string());
        }
        self.cmd = Some(cmd);
        Ok(())
    }

    /// The body of ipvsadm's option loop for one option.
    ///
    /// `-R`, `-h` and `-v` are refused in words that fit both places a
    /// line comes from, lb.conf and the control channel.
    fn option(&mut self, key: Key, arg: Option<&'a str>) -> Result<(), String> {
        let arg_str = arg.unwrap_or("");
        match key {
            Key::Command(cmd) => {
                self.set_command(cmd)?;
                match cmd {
                    Cmd::StartDaemon | Cmd::StopDaemon => {
                        self.daemon = Some(match arg_str {
                            "master" => DaemonKind::Master,
                            "backup" => DaemonKind::Backup,
                            _ if cmd == Cmd::StartDaemon => {
                                return Err("illegal start-daemon parameter specified".to_string())
                            }
                            _ => return Err("illegal start_daemon specified".to_string()),
                        });
                    }
                    Cmd::Restore => return Err(RESTORE_REFUSED.into()),
                    _ => {}
                }
            }
            Key::Help => return Err(not_a_rule("-h")),
            Key::Version => return Err(not_a_rule("-v")),
            Key::Tcp | Key::Udp | Key::Sctp => {
                self.set_option(Opt::Service)?;
                self.proto = match key {
                    Key::Tcp => Protocol::Tcp,
                    Key::Udp => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                let hp = parse_service(arg_str, self.proto)
                    .ok_or_else(|| "illegal virtual server address[:port] specified".to_string())?;
                self.service = Some(hp);
            }
            Key::Fwmark => {
                self.set_option(Opt::Service)?;
                parse_fwmark(arg_str)?;
                self.fwmark = true;
                return Err("fwmark services (-f) are not supported by p4lite".into());
            }
            Key::Scheduler => {
                self.set_option(Opt::Scheduler)?;
                self.sched_name = Some(arg_str);
            }
            Key::Persistent => {
                self.set_option(Opt::Persistent)?;
                self.persistent = Some(parse_timeout(arg, 1, MAX_TIMEOUT)?);
            }
            Key::Netmask => {
                self.set_option(Opt::Netmask)?;
                self.netmask =
                    inet_aton(arg_str).ok_or_else(|| "illegal virtual server persistent mask specified".to_string())?;
            }
            Key::Server => {
                self.set_option(Opt::Server)?;
                let hp = parse_service(arg_str, self.proto)
                    .ok_or_else(|| "illegal real server address[:port] specified".to_string())?;
                self.server = Some(hp);
            }
            Key::Masq | Key::Ipip | Key::Gate => {
                self.set_option(Opt::Forward)?;
                self.fwd = match key {
                    Key::Masq => FwdMethod::Masq,
                    Key::Ipip => FwdMethod::Tunnel,
                    _ => FwdMethod::Route,
                };
            }
            Key::Weight => {
                self.set_option(Opt::Weight)?;
                self.weight = string_to_number(arg_str, 0, 65535).ok_or("illegal weight specified")? as u32;
            }
            Key::UThreshold => {
                self.set_option(Opt::UThreshold)?;
                self.u_threshold =
                    string_to_number(arg_str, 0, i32::MAX.into()).ok_or("illegal u_threshold specified")? as u32;
            }
            Key::LThreshold => {
                self.set_option(Opt::LThreshold)?;
                self.l_threshold =
                    string_to_number(arg_str, 0, i32::MAX.into()).ok_or("illegal l_threshold specified")? as u32;
            }
            Key::Connection => self.set_option(Opt::Connection)?,
            Key::Numeric => {
                self.set_option(Opt::Numeric)?;
                self.format.numeric = true;
            }
            Key::McastInterface => {
                self.set_option(Opt::Mcast)?;
                // ipvsadm copies at most IP_VS_IFNAME_MAXLEN - 1 bytes.
                self.mcast_ifn = Some(arg_str.get(..15).unwrap_or(arg_str));
            }
            Key::SyncId => {
                self.set_option(Opt::SyncId)?;
                self.syncid = string_to_number(arg_str, 0, 255).ok_or("illegal syncid specified")? as u8;
            }
            Key::Timeout => self.set_option(Opt::Timeout)?,
            Key::Daemon => self.set_option(Opt::Daemon)?,
            Key::Stats => {
                self.set_option(Opt::Stats)?;
                self.format.stats = true;
            }
            Key::Rate => {
                self.set_option(Opt::Rate)?;
                self.format.rate = true;
            }
            Key::Thresholds => {
                self.set_option(Opt::Thresholds)?;
                self.format.thresholds = true;
            }
            Key::PersistentConn => {
                self.set_option(Opt::PersistentConn)?;
                self.format.persistent_conn = true;
            }
            Key::NoSort => {
                self.set_option(Opt::NoSort)?;
                self.format.nosort = true;
            }
            // "Sort is the default, this is a no-op for compatibility".
            Key::Sort => {}
            Key::Exact => {
                self.set_option(Opt::Exact)?;
                self.format.exact = true;
            }
            // Only meaningful after -f, which is rejected above.
            Key::Ipv6 => return Err("-6 used before -f".into()),
            Key::Ops => {
                self.set_option(Opt::OnePacket)?;
                self.one_packet = true;
            }
            Key::Pe => {
                self.set_option(Opt::Pe)?;
                self.pe = Some(arg_str);
            }
            Key::SchedFlags => {
                self.set_option(Opt::SchedFlags)?;
                self.sched_flags_arg = Some(arg_str);
            }
            Key::McastGroup => {
                self.set_option(Opt::McastGroup)?;
                if arg_str.contains(':') {
                    if !arg_str.parse::<Ipv6Addr>().is_ok_and(|a| a.is_multicast()) {
                        return Err(format!("invalid IPv6 mcast-group `{arg_str}'"));
                    }
                    return Err(format!("IPv6 mcast-group {arg_str} is not supported by p4lite (IPv4 only)"));
                }
                match arg_str.parse::<Ipv4Addr>() {
                    Ok(a) if a.is_multicast() => self.mcast_group = Some(a),
                    _ => return Err(format!("invalid IPv4 mcast-group `{arg_str}'")),
                }
            }
            Key::McastPort => {
                self.set_option(Opt::McastPort)?;
                self.mcast_port =
                    Some(string_to_number(arg_str, 1, 65535).ok_or("illegal mcast-port specified")? as u16);
            }
            Key::McastTtl => {
                self.set_option(Opt::McastTtl)?;
                self.mcast_ttl = Some(string_to_number(arg_str, 1, 255).ok_or("illegal mcast-ttl specified")? as u8);
            }
            Key::SyncMaxlen => {
                self.set_option(Opt::SyncMaxlen)?;
                self.sync_maxlen =
                    Some(string_to_number(arg_str, 1, 65535 - 20 - 8).ok_or("illegal sync-maxlen specified")? as u16);
            }
            Key::TunInfo => {
                self.set_option(Opt::TunInfo)?;
                self.format.tun_info = true;
            }
            Key::TunType => {
                self.set_option(Opt::TunType)?;
                self.tun_type = match arg_str {
                    "ipip" => TunType::Ipip,
                    "gue" => TunType::Gue,
                    "gre" => TunType::Gre,
                    _ => return Err("illegal tunnel type specified".into()),
                };
            }
            Key::TunPort => {
                self.set_option(Opt::TunPort)?;
                self.tun_port = string_to_number(arg_str, 1, 65535).ok_or("illegal tunnel port specified")? as u16;
            }
            Key::TunNocsum => self.set_option(Opt::TunNocsum)?,
            Key::TunCsum => self.set_option(Opt::TunCsum)?,
            Key::TunRemcsum => self.set_option(Opt::TunRemcsum)?,
        }
        Ok(())
    }

    /// `generic_opt_check()`: the command/option matrix, checked column by
    /// column so the first offending option is the one reported.
    fn generic_opt_check(&self, cmd: Cmd) -> Result<(), String> {
        let row = cmd.matrix_row();
        let mut exclusive: Option<usize> = None;
        for (j, &rule) in row.iter().enumerate() {
            let given = self.options & (1 << j) != 0;
            match (given, rule) {
                (false, b'+') => {
                    return Err(format!(
                        "You need to supply the '{}' option for the '{}' command",
                        OPT_NAMES[j],
                        cmd.name()
                    ))
                }
                (true, b'x') => {
                    return Err(format!("Illegal '{}' option with the '{}' command", OPT_NAMES[j], cmd.name()))
                }
                (true, b'1') => match exclusive {
                    None => exclusive = Some(j),
                    Some(last) => {
                        return Err(format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            OPT_NAMES[j],
                            OPT_NAMES[last],
                            cmd.name()
                        ))
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// `tunnel_opt_check()` for the chosen tunnel type.
    fn tunnel_opt_check(&self) -> Result<(), String> {
        const COLUMNS: [Opt; 4] = [Opt::TunPort, Opt::TunNocsum, Opt::TunCsum, Opt::TunRemcsum];
        let tun = self.tun_type;
        let mut exclusive: Option<Opt> = None;
        for (&rule, &opt) in tun.matrix_row().iter().zip(COLUMNS.iter()) {
            let name = OPT_NAMES[opt as usize];
            match (self.has(opt), rule) {
                (false, b'+') => {
                    return Err(format!("You need to supply the '{name}' option for the '{}' tunnel type", tun.name()))
                }
                (true, b'x') => return Err(format!("Illegal '{name}' option with the '{}' tunnel type", tun.name())),
                (true, b'1') => match exclusive {
                    None => exclusive = Some(opt),
                    Some(last) => {
                        return Err(format!(
                            "The option '{name}' conflicts with the '{}' option in the '{}' tunnel type",
                            OPT_NAMES[last as usize],
                            tun.name()
                        ))
                    }
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// The virtual service key (IPv4 only); `None` if no `-t/-u` was given.
    fn service_key(&self) -> Result<Option<ServiceKey>, String> {
        let Some(hp) = self.service else { return Ok(None) };
        let IpAddr::V4(addr) = hp.addr else {
            return Err(format!("IPv6 virtual services are not supported by p4lite ({})", hp.addr));
        };
        Ok(Some(ServiceKey { proto: self.proto, addr, port: hp.port.unwrap_or(0) }))
    }

    /// Everything after the option loop: `--set` values, leftover words,
    /// scheduler flags, the matrix, the per-command rules, and the checks
    /// the kernel makes that do not depend on the table.
    fn finish(mut self) -> Result<AdminCmd, String> {
        let Some(cmd) = self.cmd else {
            return Err("no command given (expected one of -A -E -D -C -a -e -d -L -Z -S --set)".into());
        };
        let mut timeouts = TimeoutUpdate::default();
        if cmd == Cmd::Timeout {
            if self.args.len() < 3 {
                return Err("--set option requires 3 timeout values".into());
            }
            let rest = self.args.split_off(3);
            timeouts = TimeoutUpdate {
                tcp: parse_timeout(Some(self.args[0]), 0, MAX_TIMEOUT)?,
                tcp_fin: parse_timeout(Some(self.args[1]), 0, MAX_TIMEOUT)?,
                udp: parse_timeout(Some(self.args[2]), 0, MAX_TIMEOUT)?,
            };
            self.args = rest;
        }
        if let Some(arg) = self.args.first() {
            return Err(format!("unexpected argument {arg}"));
        }
        let sched_name = self.sched_name.unwrap_or(DEFAULT_SCHEDULER.name());
        let sched_flags = match self.sched_flags_arg {
            Some(arg) => parse_sched_flags(sched_name, arg)?,
            None => 0,
        };
        self.generic_opt_check(cmd)?;

        let svc_port = self.service.and_then(|s| s.port).unwrap_or(0);
        if matches!(cmd, Cmd::Add | Cmd::Edit) {
            if !self.fwmark && svc_port == 0 && self.persistent.is_none() {
                return Err("Zero port specified for non-persistent service".into());
            }
            if self.one_packet && !self.fwmark && self.proto != Protocol::Udp {
                return Err("One-Packet Scheduling is only for UDP virtual services".into());
            }
        }
        // `-r` without a port takes the service port; -g and -i force it.
        let mut dest_port = self.server.map(|s| s.port.unwrap_or(svc_port)).unwrap_or(0);
        if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
            if matches!(self.fwd, FwdMethod::Tunnel | FwdMethod::Route) {
                dest_port = svc_port;
            }
            if let (Some(s), Some(r)) = (self.service, self.server) {
                if s.addr.is_ipv4() != r.addr.is_ipv4() && self.fwd != FwdMethod::Tunnel {
                    return Err("Different address family is allowed only for tunneling servers".into());
                }
            }
            let tunnel_opts = [Opt::TunType, Opt::TunPort, Opt::TunNocsum, Opt::TunCsum, Opt::TunRemcsum];
            if tunnel_opts.iter().any(|&o| self.has(o)) && self.fwd != FwdMethod::Tunnel {
                return Err("Tunnel options conflict with forward method".into());
            }
            self.tunnel_opt_check()?;
        }
        if cmd == Cmd::List {
            let o = |opt: Opt| self.has(opt);
            if ((o(Opt::Connection) || o(Opt::Timeout) || o(Opt::Daemon))
                && (o(Opt::Stats) || o(Opt::Rate) || o(Opt::Thresholds)))
                || ((o(Opt::Timeout) || o(Opt::Daemon)) && o(Opt::PersistentConn))
            {
                return Err("options conflicts in the list command".into());
            }
        }

        // What the kernel would refuse regardless of the table.
        let key = self.service_key()?;
        let scheduler = match cmd {
            Cmd::Add | Cmd::Edit => Some(lookup_scheduler(sched_name)?),
            _ => None,
        };
        if let Some(pe) = self.pe {
            return Err(if pe == "sip" {
                "persistence engines (--pe sip) are not supported by p4lite".to_string()
            } else {
                "Scheduler or persistence engine not found".to_string()
            });
        }
        let server = match self.server {
            Some(HostPort { addr: IpAddr::V4(a), .. }) => Some(a),
            Some(HostPort { addr: IpAddr::V6(a), .. }) => {
                return Err(format!("IPv6 real servers are not supported by p4lite ({a})"))
            }
            None => None,
        };
        if cmd == Cmd::AddDest {
            if let Some(a) = server {
                // ip_vs_new_dest(): inet_addr_type() must be LOCAL or UNICAST.
                if a.octets()[0] == 0 || a.is_broadcast() || a.is_multicast() {
                    return Err("Invalid operation.  Possibly wrong module version, address not unicast, ...".into());
                }
            }
        }

        // The matrix guarantees the compulsory parts below.
        let need_key = || key.ok_or_else(|| "internal: service missing after the option check".to_string());
        let need_server = || server.ok_or_else(|| "internal: real server missing after the option check".to_string());
        let service_config = |key: ServiceKey, scheduler: SchedKind| ServiceConfig {
            key,
            scheduler,
            sched_flags,
            persistent: self.persistent,
            netmask: self.netmask,
            one_packet: self.one_packet,
        };
        let dest_config = |addr: Ipv4Addr| DestConfig {
            addr,
            port: dest_port,
            weight: self.weight,
            fwd: self.fwd,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tunnel: match self.tun_type {
                TunType::Gre => Tunnel::Gre { csum: self.has(Opt::TunCsum) },
                TunType::Gue => Tunnel::Gue {
                    port: self.tun_port,
                    csum: if self.has(Opt::TunCsum) {
                        GueCsum::Csum
                    } else if self.has(Opt::TunRemcsum) {
                        GueCsum::Remcsum
                    } else {
                        GueCsum::None
                    },
                },
                TunType::Ipip => Tunnel::Ipip,
            },
        };
        Ok(match cmd {
            Cmd::Add => AdminCmd::AddService(service_config(need_key()?, scheduler.unwrap_or(DEFAULT_SCHEDULER))),
            Cmd::Edit => AdminCmd::EditService(service_config(need_key()?, scheduler.unwrap_or(DEFAULT_SCHEDULER))),
            Cmd::Del => AdminCmd::DeleteService(need_key()?),
            Cmd::Flush => AdminCmd::Clear,
            Cmd::AddDest => AdminCmd::AddDest(need_key()?, dest_config(need_server()?)),
            Cmd::EditDest => AdminCmd::EditDest(need_key()?, dest_config(need_server()?)),
            Cmd::DelDest => AdminCmd::DeleteDest(need_key()?, need_server()?, dest_port),
            Cmd::Zero => AdminCmd::Zero(key),
            Cmd::Timeout => AdminCmd::SetTimeouts(timeouts),
            Cmd::Save => AdminCmd::Save(self.format),
            Cmd::List => {
                let what = if self.has(Opt::Connection) {
                    ListWhat::Connections
                } else if let Some(k) = key {
                    ListWhat::Service(k)
                } else if self.has(Opt::Timeout) {
                    ListWhat::Timeouts
                } else if self.has(Opt::Daemon) {
                    ListWhat::Daemons
                } else {
                    ListWhat::All
                };
                AdminCmd::List(ListRequest { what, format: self.format })
            }
            Cmd::StartDaemon => AdminCmd::StartDaemon(DaemonRequest {
                kind: self.daemon.ok_or("internal: --start-daemon without its kind")?,
                mcast_ifn: self.mcast_ifn.map(String::from),
                syncid: self.syncid,
                maxlen: self.sync_maxlen,
                group: self.mcast_group,
                port: self.mcast_port,
                ttl: self.mcast_ttl,
            }),
            Cmd::StopDaemon => AdminCmd::StopDaemon(self.daemon.ok_or("internal: --stop-daemon without its kind")?),
            Cmd::Restore => return Err("internal: unsupported command survived option parsing".into()),
        })
    }
}

/// Parses the words of one ipvsadm command line (a leading `ipvsadm` word
/// is allowed and skipped). The error is ipvsadm's message for the first
/// problem, as ipvsadm stops at the first one.
pub fn parse_ipvsadm(words: &[&str]) -> Result<AdminCmd, String> {
    let words = match words.first() {
        Some(&"ipvsadm") => &words[1..],
        _ => words,
    };
    let mut pending = Pending::new();
    let mut scanner = Scanner::new(words);
    while let Some(item) = scanner.next_item() {
        match item? {
            Item::Opt { key, arg } => pending.option(key, arg)?,
            Item::Arg(a) => pending.args.push(a),
        }
    }
    pending.finish()
}

/// The scheduler named `name`: one of the eight modelled ones; the other
/// kernel schedulers get a message naming the ones available.
fn lookup_scheduler(name: &str) -> Result<SchedKind, String> {
    const KERNEL_ONLY: [&str; 7] = ["sed", "nq", "fo", "ovf", "mh", "twos", "none"];
    SchedKind::from_str(name).map_err(|_| {
        if KERNEL_ONLY.contains(&name) {
            let names: Vec<&str> = SchedKind::ALL.iter().map(|k| k.name()).collect();
            format!(
                "Scheduler or persistence engine not found ('{name}' is not implemented by p4lite; available: {})",
                names.join(" ")
            )
        } else {
            "Scheduler or persistence engine not found".to_string()
        }
    })
}

/// `parse_sched_flags()`: a comma list; `sh-*` flags only with sh, `mh-*`
/// only with mh; `flag-N` with any scheduler.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, String> {
    let mut flags = 0;
    let mut any = false;
    // strtok() skips empty fields.
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, only) = match flag {
            "flag-1" => (SVC_F_SCHED1, None),
            "flag-2" => (SVC_F_SCHED2, None),
            "flag-3" => (SVC_F_SCHED3, None),
            "sh-fallback" => (SVC_F_SCHED1, Some("sh")),
            "sh-port" => (SVC_F_SCHED2, Some("sh")),
            "mh-fallback" => (SVC_F_SCHED1, Some("mh")),
            "mh-port" => (SVC_F_SCHED2, Some("mh")),
            _ => return Err(format!("invalid scheduler flag `{flag}'")),
        };
        if only.is_some_and(|s| s != sched) {
            return Err(format!("incompatible scheduler flag `{flag}'"));
        }
        flags |= bit;
    }
    if !any {
        return Err(format!("invalid scheduler flag `{arg}'"));
    }
    Ok(flags)
}

/// `parse_timeout()`: no value means the persistence default (360 s).
fn parse_timeout(arg: Option<&str>, min: u32, max: u32) -> Result<u32, String> {
    let Some(s) = arg else { return Ok(DEFAULT_PERSISTENT_TIMEOUT) };
    string_to_number(s, min.into(), max.into())
        .map(|n| n as u32)
        .ok_or_else(|| format!("invalid timeout value `{s}' specified"))
}

/// `parse_fwmark()`: 1..=u32::MAX.
fn parse_fwmark(s: &str) -> Result<u32, String> {
    strtol(s)
        .filter(|&n| n > 0 && n <= i64::from(u32::MAX))
        .map(|n| n as u32)
        .ok_or_else(|| format!("invalid fwmark value `{s}' specified"))
}

/// `string_to_number()`: a whole-word base-10 `strtol` within `min..=max`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol(s).filter(|n| (min..=max).contains(n))
}

/// `strtol(s, &end, 10)` that must consume the whole word: optional
/// leading white space and sign, at least one digit; `None` on overflow.
fn strtol(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(if neg { -n } else { n })
}

/// `parse_service()`: `host[:port]`, `[v6]:port` or a bare IPv6 address.
/// A word of digits only is refused (it would otherwise be an address).
/// Mirrors the C code closely, quirks included: brackets require a port,
/// and `[1.2.3.4]:80` yields no port.
fn parse_service(buf: &str, proto: Protocol) -> Option<HostPort> {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (host, mut port_str) = if let Some(inner) = buf.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        (host, Some(after.strip_prefix(':')?))
    } else {
        (buf, None)
    };
    let addr = if let Ok(a6) = host.parse::<Ipv6Addr>() {
        IpAddr::V6(a6)
    } else {
        let host = match host.rsplit_once(':') {
            Some((h, p)) => {
                port_str = Some(p);
                h
            }
            None => {
                port_str = None;
                host
            }
        };
        IpAddr::V4(inet_aton(host)?)
    };
    let port = match port_str {
        None => None,
        Some(p) => Some(match string_to_number(p, 0, 65535) {
            Some(n) => n as u16,
            None => service_port(p, proto)?,
        }),
    };
    Some(HostPort { addr, port })
}

/// glibc `inet_aton()`: `a`, `a.b`, `a.b.c` or `a.b.c.d`, each part
/// decimal, octal (leading `0`) or hex (`0x`); the last part fills the
/// remaining bytes.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        vals.push(c_number(p)?);
    }
    let last = *vals.last()?;
    let head = &vals[..vals.len() - 1];
    if head.iter().any(|&v| v > 0xff) {
        return None;
    }
    let last_bits = 32 - 8 * head.len() as u32;
    if last_bits < 32 && last >= 1u64 << last_bits || last > u64::from(u32::MAX) {
        return None;
    }
    let mut addr: u32 = 0;
    for (i, &v) in head.iter().enumerate() {
        addr |= (v as u32) << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(addr | last as u32))
}

/// One part of an `inet_aton` address: `strtoul(p, &end, 0)` over the
/// whole part (which must start with a digit).
fn c_number(p: &str) -> Option<u64> {
    if !p.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if digits.is_empty() {
        // "0x" alone is 0 in glibc's parser.
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `getservbyname()` for the port names a load balancer file is likely to
/// use (a subset of Debian's `/etc/services`; names are the same for TCP
/// and UDP except where noted).
pub fn service_port(name: &str, proto: Protocol) -> Option<u16> {
    const BOTH: &[(&str, u16)] = &[
        ("ftp-data", 20),
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("www", 80),
        ("kerberos", 88),
        ("pop3", 110),
        ("ntp", 123),
        ("imap2", 143),
        ("imap", 143),
        ("snmp", 161),
        ("ldap", 389),
        ("https", 443),
        ("submission", 587),
        ("ldaps", 636),
        ("imaps", 993),
        ("pop3s", 995),
        ("mysql", 3306),
        ("sip", 5060),
        ("postgresql", 5432),
        ("http-alt", 8080),
    ];
    const UDP_ONLY: &[(&str, u16)] = &[("bootps", 67), ("bootpc", 68), ("tftp", 69), ("syslog", 514)];
    let udp = if proto == Protocol::Udp { UDP_ONLY } else { &[] };
    BOTH.iter().chain(udp.iter()).find(|(n, _)| *n == name).map(|&(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<AdminCmd, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse_ipvsadm(&words)
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Ok(cmd) => panic!("`{line}` parsed: {cmd:?}"),
            Err(e) => e,
        }
    }

    fn key(proto: Protocol, addr: [u8; 4], port: u16) -> ServiceKey {
        ServiceKey { proto, addr: Ipv4Addr::from(addr), port }
    }

    const VIP80: ServiceKey = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 51, 100, 10), port: 80 };

    #[test]
    fn add_service_defaults() {
        let cmd = parse("-A -t 198.51.100.10:80").unwrap();
        assert_eq!(
            cmd,
            AdminCmd::AddService(ServiceConfig {
                key: VIP80,
                scheduler: SchedKind::Wlc,
                sched_flags: 0,
                persistent: None,
                netmask: Ipv4Addr::BROADCAST,
                one_packet: false,
            })
        );
    }

    #[test]
    fn add_service_every_option_long_and_short() {
        let short = parse("-A -u 198.51.100.10:53 -s rr -p 100 -M 255.255.255.0 -o").unwrap();
        let long = parse(
            "--add-service --udp-service=198.51.100.10:53 --scheduler rr --persistent=100 \
             --netmask 255.255.255.0 --ops",
        )
        .unwrap();
        let want = AdminCmd::AddService(ServiceConfig {
            key: key(Protocol::Udp, [198, 51, 100, 10], 53),
            scheduler: SchedKind::Rr,
            sched_flags: 0,
            persistent: Some(100),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            one_packet: true,
        });
        assert_eq!(short, want);
        assert_eq!(long, want);
        // Option order is free, the command included.
        assert_eq!(parse("-o -M 255.255.255.0 -p 100 -s rr -u 198.51.100.10:53 -A").unwrap(), want);
        // A leading "ipvsadm" word is allowed.
        assert_eq!(parse("ipvsadm -A -u 198.51.100.10:53 -s rr -p 100 -M 255.255.255.0 -o").unwrap(), want);
    }

    #[test]
    fn persistent_default_and_optional_argument() {
        let AdminCmd::AddService(c) = parse("-A -t 198.51.100.10:443 -p").unwrap() else { panic!() };
        assert_eq!(c.persistent, Some(360));
        // The next word is not taken when it is an option.
        let AdminCmd::AddService(c) = parse("-A -t 198.51.100.10:443 -p -s rr").unwrap() else { panic!() };
        assert_eq!((c.persistent, c.scheduler), (Some(360), SchedKind::Rr));
        let AdminCmd::AddService(c) = parse("-A -t 198.51.100.10:443 -p600").unwrap() else { panic!() };
        assert_eq!(c.persistent, Some(600));
        let AdminCmd::AddService(c) = parse("-A -t 198.51.100.10:443 --persistent").unwrap() else { panic!() };
        assert_eq!(c.persistent, Some(360));
        let AdminCmd::AddService(c) = parse("-A -t 198.51.100.10:443 -p 2678400").unwrap() else { panic!() };
        assert_eq!(c.persistent, Some(MAX_TIMEOUT));
        assert_eq!(err("-A -t 198.51.100.10:443 -p 0"), "invalid timeout value `0' specified");
        assert_eq!(err("-A -t 198.51.100.10:443 -p 2678401"), "invalid timeout value `2678401' specified");
        assert_eq!(err("-A -t 198.51.100.10:443 -p 10s"), "invalid timeout value `10s' specified");
    }

    #[test]
    fn edit_service_resets_to_defaults() {
        // -E sends a complete definition: no -s means wlc, no -p means off.
        let AdminCmd::EditService(c) = parse("-E -t 198.51.100.10:80").unwrap() else { panic!() };
        assert_eq!((c.scheduler, c.persistent, c.sched_flags), (SchedKind::Wlc, None, 0));
    }

    #[test]
    fn every_scheduler() {
        for k in SchedKind::ALL {
            let AdminCmd::AddService(c) = parse(&format!("-A -t 10.0.0.1:80 -s {}", k.name())).unwrap() else {
                panic!()
            };
            assert_eq!(c.scheduler, k);
        }
        assert_eq!(err("-A -t 10.0.0.1:80 -s foo"), "Scheduler or persistence engine not found");
        assert_eq!(
            err("-A -t 10.0.0.1:80 -s sed"),
            "Scheduler or persistence engine not found ('sed' is not implemented by p4lite; \
             available: rr wrr lc wlc lblc lblcr dh sh)"
        );
    }

    #[test]
    fn scheduler_flags() {
        let flags = |line: &str| match parse(line).unwrap() {
            AdminCmd::AddService(c) => c.sched_flags,
            other => panic!("{other:?}"),
        };
        assert_eq!(flags("-A -t 10.0.0.1:80 -s sh -b sh-fallback"), SVC_F_SCHED1);
        assert_eq!(flags("-A -t 10.0.0.1:80 -s sh -b sh-port"), SVC_F_SCHED2);
        assert_eq!(flags("-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port"), SVC_F_SCHED1 | SVC_F_SCHED2);
        assert_eq!(flags("-A -t 10.0.0.1:80 --sched-flags sh-port,sh-fallback -s sh"), SVC_F_SCHED1 | SVC_F_SCHED2);
        // flag-N aliases work with any scheduler (flag-1 is sh-fallback for sh).
        assert_eq!(flags("-A -t 10.0.0.1:80 -s sh -b flag-1"), SVC_F_SCHED1);
        assert_eq!(flags("-A -t 10.0.0.1:80 -s rr -b flag-2,flag-3"), SVC_F_SCHED2 | SVC_F_SCHED3);
        assert_eq!(flags("-A -t 10.0.0.1:80 -b flag-1"), SVC_F_SCHED1);
        assert_eq!(err("-A -t 10.0.0.1:80 -b sh-port"), "incompatible scheduler flag `sh-port'");
        assert_eq!(err("-A -t 10.0.0.1:80 -s rr -b sh-fallback"), "incompatible scheduler flag `sh-fallback'");
        assert_eq!(err("-A -t 10.0.0.1:80 -s sh -b mh-port"), "incompatible scheduler flag `mh-port'");
        assert_eq!(err("-A -t 10.0.0.1:80 -s sh -b fast"), "invalid scheduler flag `fast'");
        assert_eq!(err("-A -t 10.0.0.1:80 -s sh -b ,"), "invalid scheduler flag `,'");
    }

    #[test]
    fn add_dest_defaults() {
        let cmd = parse("-a -t 198.51.100.10:80 -r 10.1.1.21").unwrap();
        assert_eq!(
            cmd,
            AdminCmd::AddDest(
                VIP80,
                DestConfig {
                    addr: Ipv4Addr::new(10, 1, 1, 21),
                    port: 80,
                    weight: 1,
                    fwd: FwdMethod::Route,
                    u_threshold: 0,
                    l_threshold: 0,
                    tunnel: Tunnel::Ipip,
                }
            )
        );
    }

    #[test]
    fn add_dest_every_option() {
        let want = AdminCmd::AddDest(
            VIP80,
            DestConfig {
                addr: Ipv4Addr::new(10, 1, 1, 21),
                port: 8080,
                weight: 5,
                fwd: FwdMethod::Masq,
                u_threshold: 100,
                l_threshold: 50,
                tunnel: Tunnel::Ipip,
            },
        );
        assert_eq!(parse("-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 5 -x 100 -y 50").unwrap(), want);
        assert_eq!(
            parse(
                "--add-server --tcp-service 198.51.100.10:80 --real-server=10.1.1.21:8080 --masquerading \
                 --weight=5 --u-threshold 100 --l-threshold 50"
            )
            .unwrap(),
            want
        );
        // Clustered short options with attached arguments.
        assert_eq!(parse("-amw5 -t198.51.100.10:80 -r10.1.1.21:8080 -x100 -y50").unwrap(), want);
        // -r before -t: the order does not matter.
        assert_eq!(parse("-a -r 10.1.1.21:8080 -m -w 5 -x 100 -y 50 -t 198.51.100.10:80").unwrap(), want);
    }

    #[test]
    fn dest_port_rules() {
        let dest = |line: &str| match parse(line).unwrap() {
            AdminCmd::AddDest(_, d) | AdminCmd::EditDest(_, d) => (d.port, d.fwd),
            other => panic!("{other:?}"),
        };
        // No port: the service port, for every method.
        assert_eq!(dest("-a -t 10.0.0.1:80 -r 10.1.1.1 -m"), (80, FwdMethod::Masq));
        assert_eq!(dest("-a -r 10.1.1.1 -m -t 10.0.0.1:80"), (80, FwdMethod::Masq));
        // -g and -i force the service port.
        assert_eq!(dest("-a -t 10.0.0.1:80 -r 10.1.1.1:8080"), (80, FwdMethod::Route));
        assert_eq!(dest("-a -t 10.0.0.1:80 -r 10.1.1.1:8080 -g"), (80, FwdMethod::Route));
        assert_eq!(dest("-a -t 10.0.0.1:80 -r 10.1.1.1:8080 -i"), (80, FwdMethod::Tunnel));
        assert_eq!(dest("-a -t 10.0.0.1:80 -r 10.1.1.1:8080 --ipip"), (80, FwdMethod::Tunnel));
        assert_eq!(dest("-a -t 10.0.0.1:80 -r 10.1.1.1:8080 --gatewaying"), (80, FwdMethod::Route));
        // -e has the same defaults: without -m a NAT server becomes -g.
        assert_eq!(dest("-e -t 10.0.0.1:80 -r 10.1.1.1:8080 -w 5"), (80, FwdMethod::Route));
        // Delete keeps the given port.
        assert_eq!(
            parse("-d -t 10.0.0.1:80 -r 10.1.1.1:8080").unwrap(),
            AdminCmd::DeleteDest(key(Protocol::Tcp, [10, 0, 0, 1], 80), Ipv4Addr::new(10, 1, 1, 1), 8080)
        );
        assert_eq!(
            parse("--delete-server -t 10.0.0.1:80 -r 10.1.1.1").unwrap(),
            AdminCmd::DeleteDest(key(Protocol::Tcp, [10, 0, 0, 1], 80), Ipv4Addr::new(10, 1, 1, 1), 80)
        );
    }

    #[test]
    fn weight_and_threshold_ranges() {
        let weight = |line: &str| match parse(line).unwrap() {
            AdminCmd::AddDest(_, d) => d.weight,
            other => panic!("{other:?}"),
        };
        assert_eq!(weight("-a -t 10.0.0.1:80 -r 10.1.1.1 -w 0"), 0);
        assert_eq!(weight("-a -t 10.0.0.1:80 -r 10.1.1.1 -w 65535"), 65535);
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -w 65536"), "illegal weight specified");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -w -1"), "illegal weight specified");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -w x"), "illegal weight specified");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -x 2147483648"), "illegal u_threshold specified");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -y -3"), "illegal l_threshold specified");
        let AdminCmd::AddDest(_, d) = parse("-a -t 10.0.0.1:80 -r 10.1.1.1 -x 2147483647").unwrap() else { panic!() };
        assert_eq!(d.u_threshold, 2147483647);
    }

    #[test]
    fn other_commands() {
        assert_eq!(parse("-D -t 198.51.100.10:80").unwrap(), AdminCmd::DeleteService(VIP80));
        assert_eq!(parse("--delete-service -t 198.51.100.10:http").unwrap(), AdminCmd::DeleteService(VIP80));
        assert_eq!(parse("-C").unwrap(), AdminCmd::Clear);
        assert_eq!(parse("--clear").unwrap(), AdminCmd::Clear);
        assert_eq!(parse("-Z").unwrap(), AdminCmd::Zero(None));
        assert_eq!(parse("--zero -t 198.51.100.10:80").unwrap(), AdminCmd::Zero(Some(VIP80)));
        assert_eq!(
            parse("--set 900 120 300").unwrap(),
            AdminCmd::SetTimeouts(TimeoutUpdate { tcp: 900, tcp_fin: 120, udp: 300 })
        );
        assert_eq!(
            parse("--set 0 0 60").unwrap(),
            AdminCmd::SetTimeouts(TimeoutUpdate { tcp: 0, tcp_fin: 0, udp: 60 })
        );
        assert_eq!(parse("-S -n").unwrap(), AdminCmd::Save(ListFormat { numeric: true, ..ListFormat::default() }));
    }

    #[test]
    fn list_commands() {
        let list = |line: &str| match parse(line).unwrap() {
            AdminCmd::List(r) => r,
            other => panic!("{other:?}"),
        };
        let f = ListFormat::default();
        assert_eq!(list("-L"), ListRequest { what: ListWhat::All, format: f });
        assert_eq!(list("-l"), ListRequest { what: ListWhat::All, format: f });
        assert_eq!(list("-Ln"), ListRequest { what: ListWhat::All, format: ListFormat { numeric: true, ..f } });
        assert_eq!(
            list("-L -n --stats --exact"),
            ListRequest { what: ListWhat::All, format: ListFormat { numeric: true, stats: true, exact: true, ..f } }
        );
        assert_eq!(
            list("--list --numeric --rate -X"),
            ListRequest { what: ListWhat::All, format: ListFormat { numeric: true, rate: true, exact: true, ..f } }
        );
        assert_eq!(
            list("-Lnc"),
            ListRequest { what: ListWhat::Connections, format: ListFormat { numeric: true, ..f } }
        );
        assert_eq!(
            list("-L -n -t 198.51.100.10:80"),
            ListRequest { what: ListWhat::Service(VIP80), format: ListFormat { numeric: true, ..f } }
        );
        assert_eq!(list("-L --timeout").what, ListWhat::Timeouts);
        assert_eq!(list("-L --daemon").what, ListWhat::Daemons);
        assert!(list("-Ln --thresholds").format.thresholds);
        assert!(list("-Ln --persistent-conn").format.persistent_conn);
        assert!(list("-Ln --nosort --sort").format.nosort);
        assert!(list("-Ln --tun-info").format.tun_info);
        assert_eq!(err("-Lc --stats"), "options conflicts in the list command");
        assert_eq!(err("-L --timeout --persistent-conn"), "options conflicts in the list command");
        assert_eq!(
            err("-L -c -t 198.51.100.10:80"),
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            err("-L -c --timeout"),
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command"
        );
    }

    #[test]
    fn option_matrix_errors() {
        assert_eq!(err("-A -s rr"), "You need to supply the 'service-address' option for the 'add-service' command");
        assert_eq!(
            err("-a -t 10.0.0.1:80"),
            "You need to supply the 'real-server' option for the 'add-server' command"
        );
        assert_eq!(err("-A -t 10.0.0.1:80 -w 3"), "Illegal 'weight' option with the 'add-service' command");
        assert_eq!(err("-C -n"), "Illegal 'numeric' option with the 'flush' command");
        assert_eq!(err("-D -t 10.0.0.1:80 -s rr"), "Illegal 'scheduler' option with the 'delete-service' command");
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -s rr"),
            "Illegal 'scheduler' option with the 'add-server' command"
        );
        assert_eq!(
            err("-d -t 10.0.0.1:80 -r 10.1.1.1 -m"),
            "Illegal 'forwarding-method' option with the 'delete-server' command"
        );
        assert_eq!(err("--set 1 2 3 -n"), "Illegal 'numeric' option with the 'set' command");
        assert_eq!(err("-Z -n"), "Illegal 'numeric' option with the 'zero' command");
        assert_eq!(err("-S --stats"), "Illegal 'stats' option with the 'save' command");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -m -g"), "multiple 'forwarding-method' options specified");
        assert_eq!(err("-A -t 10.0.0.1:80 -u 10.0.0.1:53"), "multiple 'service-address' options specified");
        assert_eq!(err("-A -a -t 10.0.0.1:80"), "multiple commands specified");
        assert_eq!(err("-t 10.0.0.1:80"), "no command given (expected one of -A -E -D -C -a -e -d -L -Z -S --set)");
    }

    #[test]
    fn process_options_rules() {
        assert_eq!(err("-A -t 10.0.0.1"), "Zero port specified for non-persistent service");
        assert_eq!(err("-A -t 10.0.0.1:0"), "Zero port specified for non-persistent service");
        let AdminCmd::AddService(c) = parse("-A -t 10.0.0.1 -p").unwrap() else { panic!() };
        assert_eq!((c.key.port, c.persistent), (0, Some(360)));
        assert_eq!(err("-A -t 10.0.0.1:80 -o"), "One-Packet Scheduling is only for UDP virtual services");
        assert_eq!(err("--set 1 2"), "--set option requires 3 timeout values");
        assert_eq!(err("--set 1 2 x"), "invalid timeout value `x' specified");
        assert_eq!(err("--set 1 2 3 4"), "unexpected argument 4");
        assert_eq!(err("-C now"), "unexpected argument now");
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 --tun-type gue --tun-port 6080"),
            "Tunnel options conflict with forward method"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue"),
            "You need to supply the 'tun-port' option for the 'gue' tunnel type"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-port 6080"),
            "Illegal 'tun-port' option with the 'ipip' tunnel type"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gre --tun-csum --tun-nocsum"),
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum"),
            "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue --tun-port 0"),
            "illegal tunnel port specified"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue --tun-port 65536"),
            "illegal tunnel port specified"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gre --tun-port 6080"),
            "Illegal 'tun-port' option with the 'gre' tunnel type"
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gre --tun-remcsum"),
            "Illegal 'tun-remcsum' option with the 'gre' tunnel type"
        );
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type vxlan"), "illegal tunnel type specified");
        let tunnel = |line: &str| match parse(line).unwrap() {
            AdminCmd::AddDest(_, d) | AdminCmd::EditDest(_, d) => (d.fwd, d.tunnel),
            other => panic!("{other:?}"),
        };
        let rs = "-t 10.0.0.1:80 -r 10.1.1.1";
        assert_eq!(tunnel(&format!("-a {rs} -i --tun-type ipip")), (FwdMethod::Tunnel, Tunnel::Ipip));
        assert_eq!(tunnel(&format!("-a {rs} -i")), (FwdMethod::Tunnel, Tunnel::Ipip));
        // GRE without a checksum unless --tun-csum (ipvsadm's flags 0).
        assert_eq!(tunnel(&format!("-a {rs} -i --tun-type gre")), (FwdMethod::Tunnel, Tunnel::Gre { csum: false }));
        assert_eq!(
            tunnel(&format!("-a {rs} -i --tun-type gre --tun-nocsum")),
            (FwdMethod::Tunnel, Tunnel::Gre { csum: false })
        );
        assert_eq!(
            tunnel(&format!("-e {rs} -i --tun-type=gre --tun-csum")),
            (FwdMethod::Tunnel, Tunnel::Gre { csum: true })
        );
        // GUE: the port, and nocsum unless --tun-csum or --tun-remcsum.
        let gue = |port, csum| (FwdMethod::Tunnel, Tunnel::Gue { port, csum });
        assert_eq!(tunnel(&format!("-a {rs} -i --tun-type gue --tun-port 6080")), gue(6080, GueCsum::None));
        assert_eq!(
            tunnel(&format!("-a {rs} -i --tun-type gue --tun-port 5555 --tun-nocsum")),
            gue(5555, GueCsum::None)
        );
        assert_eq!(tunnel(&format!("-a {rs} -i --tun-type gue --tun-port=1 --tun-csum")), gue(1, GueCsum::Csum));
        assert_eq!(
            tunnel(&format!("-e {rs} -i --tun-type=gue --tun-port 65535 --tun-remcsum")),
            gue(65535, GueCsum::Remcsum)
        );
        // An edit without tunnel options is back to ipip, as ipvsadm sends it.
        assert_eq!(tunnel(&format!("-e {rs} -i -w 3")), (FwdMethod::Tunnel, Tunnel::Ipip));
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m"),
            "Different address family is allowed only for tunneling servers"
        );
    }

    #[test]
    fn address_errors() {
        assert_eq!(err("-A -t 80"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-A -t www.example.com:80"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-A -t 10.0.0.1:65536"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-A -t 10.0.0.1:"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-A -t 10.0.0.1:nosuchservice"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-A -t 256.0.0.1:80"), "illegal virtual server address[:port] specified");
        // inet_aton's short forms are addresses, as in ipvsadm.
        let AdminCmd::AddDest(_, d) = parse("-a -t 10.0.0.1:80 -r 10.1.1").unwrap() else { panic!() };
        assert_eq!(d.addr, Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.x"), "illegal real server address[:port] specified");
        assert_eq!(err("-A -t 10.0.0.1:80 -p -M 255.255.255.x"), "illegal virtual server persistent mask specified");
        assert_eq!(err("-A -t [2001:db8::1]:80"), "IPv6 virtual services are not supported by p4lite (2001:db8::1)");
        assert_eq!(err("-A -t [2001:db8::1]"), "illegal virtual server address[:port] specified");
        assert_eq!(err("-f 1 -A"), "fwmark services (-f) are not supported by p4lite");
        assert_eq!(err("-A -f 0"), "invalid fwmark value `0' specified");
        assert_eq!(err("-A -t 10.0.0.1:80 -6"), "-6 used before -f");
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 224.0.0.1"),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
        assert_eq!(
            err("-a -t 10.0.0.1:80 -r 0.0.0.0"),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
        assert_eq!(err("-A -t 10.0.0.1:80 --pe sip"), "persistence engines (--pe sip) are not supported by p4lite");
    }

    #[test]
    fn popt_errors() {
        assert_eq!(err("-A -t 10.0.0.1:80 --bogus"), "--bogus: unknown option");
        assert_eq!(err("-Aq -t 10.0.0.1:80"), "-Aq: unknown option");
        assert_eq!(err("-a -t 10.0.0.1:80 -r 10.1.1.1 -w"), "-w: missing argument");
        assert_eq!(err("-A -t"), "-t: missing argument");
        assert_eq!(err("--clear=yes"), "--clear=yes: option does not take an argument");
        // The same words in lb.conf and over `p4lite ctl`: no "configuration file".
        assert_eq!(
            err("-R"),
            "-R is not supported: give the rules themselves (lb.conf lines, or `p4lite ctl SOCKET < rules`, one per line)"
        );
        assert_eq!(
            err("-h"),
            "-h is not supported: p4lite takes ipvsadm rules and listings only (`p4lite ctl SOCKET help` lists them)"
        );
        assert_eq!(
            err("--version"),
            "-v is not supported: p4lite takes ipvsadm rules and listings only (`p4lite ctl SOCKET help` lists them)"
        );
        assert_eq!(err("--start-daemon primary"), "illegal start-daemon parameter specified");
        assert_eq!(err("--stop-daemon primary"), "illegal start_daemon specified");
    }

    #[test]
    fn sync_daemon_commands() {
        assert_eq!(
            parse(
                "--start-daemon backup --mcast-interface eth1 --syncid 7 --sync-maxlen 2000 \
                   --mcast-group 239.1.2.3 --mcast-port 9000 --mcast-ttl 4"
            ),
            Ok(AdminCmd::StartDaemon(DaemonRequest {
                kind: DaemonKind::Backup,
                mcast_ifn: Some("eth1".into()),
                syncid: 7,
                maxlen: Some(2000),
                group: Some(Ipv4Addr::new(239, 1, 2, 3)),
                port: Some(9000),
                ttl: Some(4),
            }))
        );
        assert_eq!(
            parse("--start-daemon master"),
            Ok(AdminCmd::StartDaemon(DaemonRequest {
                kind: DaemonKind::Master,
                mcast_ifn: None,
                syncid: 0,
                maxlen: None,
                group: None,
                port: None,
                ttl: None,
            }))
        );
        // ipvsadm keeps IP_VS_IFNAME_MAXLEN - 1 bytes of the name.
        match parse("--start-daemon master --mcast-interface abcdefghijklmnopq") {
            Ok(AdminCmd::StartDaemon(r)) => assert_eq!(r.mcast_ifn.as_deref(), Some("abcdefghijklmno")),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse("--stop-daemon backup"), Ok(AdminCmd::StopDaemon(DaemonKind::Backup)));
        assert_eq!(err("--start-daemon master --syncid 256"), "illegal syncid specified");
        assert_eq!(err("--start-daemon master --mcast-ttl 0"), "illegal mcast-ttl specified");
        assert_eq!(err("--start-daemon master --mcast-port 0"), "illegal mcast-port specified");
        assert_eq!(err("--start-daemon master --sync-maxlen 65508"), "illegal sync-maxlen specified");
        assert_eq!(err("--start-daemon master --mcast-group 10.0.0.1"), "invalid IPv4 mcast-group `10.0.0.1'");
        assert_eq!(
            err("--start-daemon master --mcast-group ff02::1"),
            "IPv6 mcast-group ff02::1 is not supported by p4lite (IPv4 only)"
        );
        assert!(err("--start-daemon master -w 3").starts_with("Illegal"));
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("10.1.1.21"), Some(Ipv4Addr::new(10, 1, 1, 21)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.258"), Some(Ipv4Addr::new(10, 1, 1, 2)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("0x0a.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("167772161"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("09.1.1.1"), None);
        assert_eq!(inet_aton(""), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("4294967296"), None);
    }

    #[test]
    fn service_names_and_odd_addresses() {
        assert_eq!(parse("-A -t 10.0.0.1:https").unwrap(), {
            let AdminCmd::AddService(mut c) = parse("-A -t 10.0.0.1:443").unwrap() else { panic!() };
            c.key.port = 443;
            AdminCmd::AddService(c)
        });
        let AdminCmd::AddService(c) = parse("-A -u 10.0.0.1:domain").unwrap() else { panic!() };
        assert_eq!(c.key.port, 53);
        let AdminCmd::AddService(c) = parse("-A -u 10.0.0.1:tftp").unwrap() else { panic!() };
        assert_eq!(c.key.port, 69);
        assert_eq!(err("-A -t 10.0.0.1:tftp"), "illegal virtual server address[:port] specified");
        // ipvsadm's quirk: an IPv4 address in brackets loses its port.
        assert_eq!(err("-A -t [10.0.0.1]:80"), "Zero port specified for non-persistent service");
    }
}
