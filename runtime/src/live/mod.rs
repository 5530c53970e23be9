//! Live mode: the switch on network interfaces, with a control channel.
//!
//! # Ports
//! A port is a pair of frame endpoints, [`FrameRx`] and [`FrameTx`]:
//! [`open_interface`] makes one from a Linux interface with pnet_datalink
//! (an `AF_PACKET` raw socket, promiscuous); [`mem::wire`] makes one from
//! in-memory queues for tests. The event loop sees only the traits.
//!
//! # Threads
//! The [`Switch`] is single-threaded, so exactly one thread touches it:
//! the caller of [`Live::run`] (the *switch thread*). Around it:
//! - one receive thread per port blocks in `FrameRx::recv` (a poll with a
//!   [`POLL`] timeout, so it notices shutdown), which hands it every frame
//!   queued by then, up to [`BATCH`]; it stamps the batch with the monotonic
//!   clock and sends it into one bounded queue ([`QUEUE`] events);
//! - the control server ([`crate::ctl::serve`]) posts each request into the
//!   same queue and waits for the reply;
//! - a signal thread (started by [`start`]) posts a stop event on SIGINT or SIGTERM.
//!
//! The switch thread takes events in arrival order: a batch of frames runs
//! through the pipeline in order (each frame's hint pass, such as the
//! connection table's prefetch, [`HINT_DISTANCE`] frames ahead, as in
//! replay), and the copies go out on the egress ports' `FrameTx` when the
//! batch is done, each port's in order, with one `send_batch` per port
//! (transmission happens on the switch thread, no second queue); a control
//! request is executed whole, so it lands between two batches; a
//! stop event ends the loop. Fairness: the queue is FIFO across ports and
//! a receive thread that finds it full blocks, leaving its frames in its
//! kernel socket buffer, so a flooded port delays the others by at most
//! the queue length and cannot starve them. Frames the kernel drops from a
//! full socket buffer are read back with `PACKET_STATISTICS` and reported.
//!
//! # Links that go down
//! An interface that goes down while the switch runs (`ip link set DEV
//! down`, a lost carrier, a veth whose peer went away) is not an error of
//! the run: the kernel reports `ENETDOWN` once on the port's socket, which
//! stays bound, and frames arrive again when the interface is up. The
//! receive thread hands the error over as a notice ([`Live::set_notices`]:
//! ``port 1 (`eth1`): link down (...)``) and keeps reading; the first frames
//! after it bring a `receiving again` notice, and the report counts the
//! downs. The connection table, the tables and the other ports carry on,
//! as with Linux's IPVS. Any other receive error still ends the run.
//!
//! An interface that is already down when the switch starts is treated the
//! same way: the port is opened all the same (the kernel keeps the socket
//! bound and starts delivering frames when the interface comes up), the
//! run starts with one notice (``port 1 (`eth1`): link down at start
//! ...``), the report counts it as a down, and the first frames bring
//! `receiving again`. Only an interface that does not exist at all (a
//! typo) stops the start.
//!
//! # Interfaces deleted and re-created
//! Deleting an interface (a veth pair torn down, a container stopped, the
//! interface moved to another namespace) also reports `ENETDOWN`, but then
//! the kernel unbinds the socket for good: its bound index becomes -1, and
//! a new interface of the same name (a new index) would never be read.
//! So every [`ATTACH_CHECK`] each receive thread compares the index its
//! socket is bound to with the index of the interface of its name
//! ([`FrameRx::attachment`]): when the name has none, the port is told
//! deleted (once; the other ports go on, frames routed to it count as
//! transmit errors); when an interface of that name is there with another
//! index, the same socket is bound to it again (its options stay, and
//! sending follows because it uses the same socket), its offloads are
//! checked as at the start, and the report counts the re-attachment. A
//! renamed interface stays attached. [`IoPath::Pnet`] ports do not
//! re-attach (pnet keeps the old index for sending).
//!
//! # Own frames
//! Every packet socket of an interface sees the frames transmitted on it
//! (`sll_pkttype == PACKET_OUTGOING`), except the ones it sent itself: the
//! kernel skips the sending socket, and each port sends on the socket it
//! receives on. Frames the host's IP stack or another program sends on the
//! interface would still be read as input, and pnet does not expose the
//! packet type, so [`sys::ignore_outgoing`] sets `PACKET_IGNORE_OUTGOING`
//! on the socket before pnet binds it (or attaches a BPF filter on older
//! kernels). Only frames arriving from the wire are input.
//!
//! # Time
//! `std.timestamp` is `CLOCK_MONOTONIC` in nanoseconds when the receive
//! thread got the frame; live mode is the only place the runtime reads a clock.
//!
//! # Costs and limits
//! pnet opens and binds the sockets; by default ([`IoPath::Direct`]) the
//! frames then move in batches: one `recvmmsg` for all the frames queued
//! on the socket (up to [`BATCH`]; a `poll` only when none is) on the
//! receive thread, one queue hand-off per batch (an allocation and, when the
//! switch thread sleeps, a futex wake), and one `sendmmsg` per egress port
//! and batch on the switch thread. pnet's `next()`/`send_to()` put a `poll`
//! before every `recvfrom` and every `sendto`, one frame at a time
//! ([`IoPath::Pnet`] keeps that path for comparison; BENCHMARKS.md has the
//! numbers). There is no memory-mapped (`PACKET_RX_RING`) path.
//!
//! The switch forwards the bytes it reads. A veth peer with its offloads
//! on (the default) hands over TCP super-frames of up to 64 KiB and leaves
//! TCP/UDP checksums for an offload to fill in: such frames are read whole
//! but fail to send on a 1500-byte port (a transmit error) or arrive with
//! bad checksums. Turn offloads off on the hosts' veth ends
//! (`ethtool -K IF tx off tso off gso off`), and receive offload on the
//! switch's own interfaces (`gro off lro off rx-gro-hw off`): a physical NIC's GRO merges
//! segments too. The kernel marks such frames in their `PACKET_AUXDATA`
//! status; the first one on a port brings a notice saying this
//! ([`Live::set_notices`]). Receive offloads of the switch's own
//! interfaces are also read when a port is opened (`SIOCETHTOOL`, the
//! feature bits `ethtool -k` shows: `rx-gro`, `rx-lro`, and `rx-gro-hw`,
//! hardware GRO, which `gro off` does not always turn off): one that is on
//! is one notice at the start of the run, with the exact `ethtool -K IF
//! ... off` command. Frames longer than [`RX_BUFFER`] are counted
//! as lost, never forwarded cut short. A frame the OS refuses to send
//! (longer than the egress interface's MTU, a deleted interface) counts
//! as a transmit error, not as sent (the switch's report counts only the
//! frames the OS accepted); the first of each port is also a notice.

pub mod mem;
pub mod sys;

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use p4lite_compiler::ir;

use crate::ctl;
use crate::switch::{OutPacket, Switch, HINT_DISTANCE};

/// How long a receive thread waits for a frame before it checks for shutdown.
pub const POLL: Duration = Duration::from_millis(100);
/// Events (batches of frames and control requests) waiting for the switch thread.
pub const QUEUE: usize = 64;
/// Most frames a receive thread reads at once and hands over as one event.
pub const BATCH: usize = 32;
/// The receive buffer: the largest frame read whole (64 KiB covers a GSO
/// super-frame from a sender with offloads on).
pub const RX_BUFFER: usize = 65_536 + 512;
/// How long sending one frame may wait for room in the interface's queue.
const TX_TIMEOUT: Duration = Duration::from_millis(100);
/// How often a receive thread checks that its socket is still bound to the
/// interface of its name ([`FrameRx::attachment`]): how soon a deleted and
/// re-created interface is re-attached.
pub const ATTACH_CHECK: Duration = Duration::from_secs(1);

/// A port bound to an interface: `PORT=IFACE`, or `IFACE` for port 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The switch port (`std.ingress_port` / `std.egress_spec`).
    pub port: u16,
    /// The interface name (`eth0`).
    pub iface: String,
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<PortSpec, String> {
        let (port, iface) = match s.split_once('=') {
            Some((port, iface)) => {
                let port = crate::switch::parse_port(port).map_err(|e| format!("`{s}`: {e}; write PORT=IFACE"))?;
                (port, iface)
            }
            None => (0, s),
        };
        // Linux interface names: 1..=15 bytes, no '/', no whitespace.
        if iface.is_empty() || iface.len() > 15 || iface.contains('/') || iface.contains(char::is_whitespace) {
            return Err(format!("`{s}`: `{iface}` is not a valid interface name"));
        }
        Ok(PortSpec { port, iface: iface.to_string() })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.port, self.iface)
    }
}

/// Frames stored back to back: a batch received or to be sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frames {
    data: Vec<u8>,
    /// End offset of each frame in `data`.
    ends: Vec<usize>,
}

impl Frames {
    /// An empty batch with room for `frames` frames of `bytes` bytes in all.
    pub fn with_capacity(frames: usize, bytes: usize) -> Frames {
        Frames { data: Vec::with_capacity(bytes), ends: Vec::with_capacity(frames) }
    }

    /// Appends a copy of `frame`.
    pub fn push(&mut self, frame: &[u8]) {
        self.data.extend_from_slice(frame);
        self.ends.push(self.data.len());
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True if there is no frame.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Frame `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    /// The frames in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(start, &end)| &self.data[start..end])
    }

    /// Forgets every frame (keeping the memory).
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

/// The receive side of a port.
pub trait FrameRx: Send {
    /// Appends to `batch` the frames that have arrived, at most `max`,
    /// waiting up to [`POLL`] when none has; nothing is appended when none
    /// came (so the caller can check for shutdown). An error ends the port,
    /// except `ENETDOWN` (the interface went down: see the module docs);
    /// the frames appended before it are still delivered.
    fn recv(&mut self, batch: &mut Frames, max: usize) -> io::Result<()>;

    /// A notice about what the port receives, once (offloaded frames: see
    /// the module docs); none by default.
    fn take_notice(&mut self) -> Option<String> {
        None
    }

    /// Whether the port still reads the interface of its name, re-attaching
    /// to it when it was re-created (see the module docs); called by the
    /// receive thread every [`ATTACH_CHECK`]. Attached by default.
    fn attachment(&mut self) -> Attachment {
        Attachment::Attached
    }
}

/// What [`FrameRx::attachment`] found.
#[derive(Debug)]
pub enum Attachment {
    /// The socket is bound to the interface of the port's name (or, when no
    /// interface has that name, still to the one it was opened on: renamed).
    Attached,
    /// The interface was deleted (or moved to another network namespace)
    /// and none of that name is here: the port neither receives nor sends.
    Gone,
    /// An interface of the port's name came (back) with a new index, and
    /// the socket is bound to it now; `warnings` are notices about the new
    /// interface (its receive offloads).
    Reattached { ifindex: u32, warnings: Vec<String> },
    /// An interface of the port's name is here, but binding to it failed;
    /// tried again at the next check.
    Failed(io::Error),
}

/// The transmit side of a port.
pub trait FrameTx: Send {
    /// Sends one frame; an error counts as a transmit error of the port.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Sends `frames` in order; `failed` hears of each frame that could not
    /// be sent (its index and why). By default one [`FrameTx::send`] each.
    fn send_batch(&mut self, frames: &Frames, failed: &mut dyn FnMut(usize, io::Error)) {
        for (i, frame) in frames.iter().enumerate() {
            if let Err(e) = self.send(frame) {
                failed(i, e);
            }
        }
    }

    /// Frames of this port lost on the receive side since the last call:
    /// dropped by the OS because nobody read them in time, or too large to
    /// read whole (0 when unknown).
    fn take_rx_lost(&mut self) -> u64 {
        0
    }
}

/// A port ready to run: its number, a name for messages, and its endpoints.
pub struct Port {
    /// The switch port number.
    pub port: u16,
    /// The interface (or test wire) name.
    pub name: String,
    /// Frames in.
    pub rx: Box<dyn FrameRx>,
    /// Frames out.
    pub tx: Box<dyn FrameTx>,
    /// Notices about the interface found when it was opened (receive
    /// offloads that are on), told when the run starts.
    pub warnings: Vec<String>,
    /// The interface was down when it was opened: the run starts with a
    /// link-down notice and counts it (module docs, "Links that go down").
    pub down_at_start: bool,
}

/// Why live mode could not start, or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No interface of that name in this network namespace.
    #[error("interface `{iface}` does not exist (interfaces here: {})", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    NoSuchInterface { iface: String, available: Vec<String> },
    /// The OS refused a step of opening the interface.
    #[error("cannot open interface `{iface}` ({step}): {source}{}", hint(source))]
    Open { iface: String, step: &'static str, source: io::Error },
    /// Two ports with one number, or one interface twice.
    #[error("{0}")]
    Duplicate(String),
    /// A port number the program's `std.egress_spec` cannot hold.
    #[error("port {port} (`{iface}`) is beyond the largest port the program can address ({max}, from the width of std.egress_spec)")]
    PortOutOfRange { port: u16, iface: String, max: u128 },
    /// The control socket could not be created.
    #[error("cannot serve the control channel on {}: {source}", path.display())]
    Ctl { path: PathBuf, source: io::Error },
    /// Signals or threads could not be set up.
    #[error("cannot start live mode ({step}): {source}")]
    Setup { step: &'static str, source: io::Error },
    /// Receiving on a port failed while running (not a link going down,
    /// which the run survives).
    #[error("port {port} (`{iface}`): receive failed: {source}")]
    PortFailed { port: u16, iface: String, source: io::Error },
}

fn hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::PermissionDenied {
        "; live mode needs CAP_NET_RAW (run as root)"
    } else {
        ""
    }
}

/// How frames move between the switch and an opened interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoPath {
    /// On the socket pnet opened and bound: one non-blocking `recv` per
    /// frame, with a `poll` only when the queue is empty, and one `send`
    /// per copy. Frames larger than [`RX_BUFFER`] are seen (`MSG_TRUNC`)
    /// and counted as lost instead of being forwarded cut short.
    #[default]
    Direct,
    /// pnet's own `next()` and `send_to()`: a `poll` before every
    /// `recvfrom` and before every `sendto` (kept to measure the difference).
    Pnet,
}

/// The kernel receive buffer asked for on each port: about 5000 small
/// frames, so the moments the receive thread is not scheduled cost no frames.
pub const SOCKET_RX_BUFFER: usize = 4 << 20;

/// Checks that every port fits the program's `std.egress_spec` (9 bits in
/// the prelude: ports 0..=511), so that each port can be addressed.
pub fn check_ports(program: &ir::Program, ports: &[PortSpec]) -> Result<(), LiveError> {
    let max = program.slot(program.std.egress_spec).ty.mask();
    match ports.iter().find(|p| u128::from(p.port) > max) {
        Some(p) => Err(LiveError::PortOutOfRange { port: p.port, iface: p.iface.clone(), max }),
        None => Ok(()),
    }
}

/// Opens `spec`'s interface: an `AF_PACKET` socket that ignores the host's
/// own transmissions, with a [`SOCKET_RX_BUFFER`] queue, bound to the
/// interface by pnet, promiscuous; frames move by `io`. An interface that
/// is down is opened too ([`Port::down_at_start`]); one that does not
/// exist is an error.
pub fn open_interface(spec: &PortSpec, io: IoPath) -> Result<Port, LiveError> {
    let all = pnet_datalink::interfaces();
    let Some(ni) = all.iter().find(|i| i.name == spec.iface) else {
        let mut available: Vec<String> = all.iter().map(|i| i.name.clone()).collect();
        available.dedup();
        return Err(LiveError::NoSuchInterface { iface: spec.iface.clone(), available });
    };
    let open = |step, source| LiveError::Open { iface: spec.iface.clone(), step, source };
    let fd = sys::packet_socket().map_err(|e| open("socket", e))?;
    sys::ignore_outgoing(&fd).map_err(|e| open("ignore outgoing frames", e))?;
    sys::set_receive_buffer(&fd, SOCKET_RX_BUFFER).map_err(|e| open("receive buffer", e))?;
    sys::want_aux_status(&fd).map_err(|e| open("auxiliary data", e))?;
    let raw = fd.as_raw_fd();
    let config = pnet_datalink::Config {
        read_buffer_size: if io == IoPath::Pnet { RX_BUFFER } else { 0 },
        // Only `build_and_send` uses this buffer; `send_to` sends in place.
        write_buffer_size: 2048,
        read_timeout: Some(POLL),
        write_timeout: Some(TX_TIMEOUT),
        promiscuous: true,
        // pnet owns the descriptor from here on (and closes it on failure).
        socket_fd: Some(fd.into_raw_fd()),
        ..Default::default()
    };
    let (tx, rx) = match pnet_datalink::channel(ni, config) {
        Ok(pnet_datalink::Channel::Ethernet(tx, rx)) => (tx, rx),
        Ok(_) => return Err(open("channel", io::Error::other("pnet returned a non-Ethernet channel"))),
        Err(e) => return Err(open("bind", e)),
    };
    // Binding to an interface that is down leaves `ENETDOWN` pending on the
    // socket (and the kernel starts delivering when it comes up): taken
    // here, and told once as the run starts instead of as a fresh down.
    let pending = sys::take_socket_error(raw).map_err(|e| open("socket error", e))?;
    let down_at_start = !ni.is_up() || pending == Some(libc::ENETDOWN);
    let lost = Arc::new(AtomicU64::new(0));
    let warnings = offload_warning(&spec.iface).into_iter().collect();
    let (rx, tx): (Box<dyn FrameRx>, Box<dyn FrameTx>) = match io {
        IoPath::Pnet => (Box::new(PnetRx(rx)), Box::new(PnetTx { tx, fd: raw, lost })),
        IoPath::Direct => (
            Box::new(DirectRx {
                fd: raw,
                iface: spec.iface.clone(),
                buf: vec![0; BATCH * RX_BUFFER],
                lens: [0; BATCH],
                status: [0; BATCH],
                offloaded: Offloaded::NotSeen,
                lost: lost.clone(),
                _owner: rx,
            }),
            Box::new(DirectTx { fd: raw, lost, _owner: tx }),
        ),
    };
    Ok(Port { port: spec.port, name: spec.iface.clone(), rx, tx, warnings, down_at_start })
}

/// A notice when receive offloads that merge frames (GRO, LRO, hardware
/// GRO) are on for interface `iface`, with the `ethtool` command that turns
/// them off; none when they are off or cannot be read.
fn offload_warning(iface: &str) -> Option<String> {
    offload_advice(iface, &sys::merging_offloads(iface).ok()?)
}

/// The notice of [`offload_warning`] for the merging offloads `on` (by
/// their `ethtool -K` names) of `iface`; none when `on` is empty.
fn offload_advice(iface: &str, on: &[&str]) -> Option<String> {
    if on.is_empty() {
        return None;
    }
    let off: Vec<String> = on.iter().map(|o| format!("{o} off")).collect();
    Some(format!(
        "receive offload on ({}): the kernel merges TCP segments into super-frames before the switch reads them, \
         and those leave with bad checksums or fail to send as too long. Turn it off: `ethtool -K {iface} {}`",
        on.join(", "),
        off.join(" ")
    ))
}

/// pnet's receiver; its poll timeout surfaces as `TimedOut`.
struct PnetRx(Box<dyn pnet_datalink::DataLinkReceiver>);

impl FrameRx for PnetRx {
    /// One frame per call: pnet's own path, kept for comparison.
    fn recv(&mut self, batch: &mut Frames, _max: usize) -> io::Result<()> {
        match self.0.next() {
            Ok(frame) => {
                batch.push(frame);
                Ok(())
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// pnet's sender, and the socket's descriptor for its drop statistics.
struct PnetTx {
    tx: Box<dyn pnet_datalink::DataLinkSender>,
    fd: RawFd,
    lost: Arc<AtomicU64>,
}

impl FrameTx for PnetTx {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.tx.send_to(frame, None).unwrap_or_else(|| Err(io::Error::other("frame too large for the send buffer")))
    }

    fn take_rx_lost(&mut self) -> u64 {
        sys::take_kernel_drops(self.fd).unwrap_or(0) + self.lost.swap(0, Ordering::Relaxed)
    }
}

/// [`IoPath::Direct`] receiving. The descriptor belongs to pnet's channel;
/// `_owner` (and [`DirectTx::_owner`]) keep it open.
struct DirectRx {
    fd: RawFd,
    /// The interface, for the offload notice's advice.
    iface: String,
    /// [`BATCH`] slots of [`RX_BUFFER`] bytes for `recvmmsg`.
    buf: Vec<u8>,
    lens: [usize; BATCH],
    /// Each frame's `tpacket_auxdata` status.
    status: [u32; BATCH],
    /// Whether an offloaded frame came, and whether that was told.
    offloaded: Offloaded,
    /// Oversized frames skipped, reported by the port's [`DirectTx`].
    lost: Arc<AtomicU64>,
    _owner: Box<dyn pnet_datalink::DataLinkReceiver>,
}

impl FrameRx for DirectRx {
    fn recv(&mut self, batch: &mut Frames, max: usize) -> io::Result<()> {
        // Take what is queued; wait (once, up to POLL) only when nothing is.
        let max = max.clamp(1, BATCH);
        let mut waited = false;
        loop {
            let n =
                sys::recv_frames(self.fd, &mut self.buf, RX_BUFFER, &mut self.lens[..max], &mut self.status[..max])?;
            if self.offloaded == Offloaded::NotSeen
                && self.status[..n].iter().any(|s| s & (sys::TP_STATUS_CSUMNOTREADY | sys::TP_STATUS_GSO_TCP) != 0)
            {
                self.offloaded = Offloaded::Seen;
            }
            for (slot, &len) in self.buf.chunks_exact(RX_BUFFER).zip(&self.lens[..n]) {
                match slot.get(..len) {
                    Some(frame) => batch.push(frame),
                    None => {
                        self.lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if n > 0 || waited {
                return Ok(());
            }
            if !sys::wait_readable(self.fd, POLL.as_millis() as i32)? {
                return Ok(());
            }
            waited = true;
        }
    }

    fn take_notice(&mut self) -> Option<String> {
        if self.offloaded != Offloaded::Seen {
            return None;
        }
        self.offloaded = Offloaded::Told;
        Some(offload_notice(&self.iface))
    }

    /// Compares the index the socket is bound to (-1 once the kernel
    /// unbound it: the interface was deleted) with the index of the
    /// interface that has the port's name now, and binds the socket again
    /// when they differ. Sending uses the same socket, so it follows.
    fn attachment(&mut self) -> Attachment {
        let (bound, named) = match (sys::bound_index(self.fd), sys::interface_index(&self.iface)) {
            (Ok(bound), Ok(named)) => (bound, named),
            (Err(e), _) | (_, Err(e)) => return Attachment::Failed(e),
        };
        match named {
            Some(ix) if i64::from(ix) == i64::from(bound) => Attachment::Attached,
            None if bound > 0 => Attachment::Attached,
            None => Attachment::Gone,
            Some(ifindex) => match sys::bind_packet(self.fd, ifindex) {
                Ok(()) => {
                    Attachment::Reattached { ifindex, warnings: offload_warning(&self.iface).into_iter().collect() }
                }
                Err(e) => Attachment::Failed(e),
            },
        }
    }
}

/// Offloaded frames on a port ([`DirectRx`]): told once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offloaded {
    NotSeen,
    Seen,
    Told,
}

/// What to do about offloaded frames arriving on `iface` (module docs).
fn offload_notice(iface: &str) -> String {
    format!(
        "receiving offloaded frames (TCP super-frames, or checksums left for a NIC to fill in): the switch forwards \
         frames as read, so these leave with bad checksums or fail to send as too long. Turn offloads off on the \
         senders (`ethtool -K DEV tx off tso off gso off`; for a veth, on its peer) and receive offload here \
         (`ethtool -K {iface} gro off lro off rx-gro-hw off`)"
    )
}

/// [`IoPath::Direct`] sending, and the socket's drop statistics.
struct DirectTx {
    fd: RawFd,
    lost: Arc<AtomicU64>,
    _owner: Box<dyn pnet_datalink::DataLinkSender>,
}

impl FrameTx for DirectTx {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let mut refused = Ok(());
        sys::send_frames(self.fd, std::iter::once(frame), TX_TIMEOUT.as_millis() as i32, &mut |_, e| refused = Err(e));
        refused
    }

    fn send_batch(&mut self, frames: &Frames, failed: &mut dyn FnMut(usize, io::Error)) {
        sys::send_frames(self.fd, frames.iter(), TX_TIMEOUT.as_millis() as i32, failed);
    }

    fn take_rx_lost(&mut self) -> u64 {
        sys::take_kernel_drops(self.fd).unwrap_or(0) + self.lost.swap(0, Ordering::Relaxed)
    }
}

/// What the switch thread is handed.
enum Event {
    /// Frames read together from one port, stamped with one time.
    Frames {
        port_ix: usize,
        ts_ns: u64,
        frames: Frames,
    },
    Control(ctl::Request),
    Failed {
        port_ix: usize,
        error: io::Error,
    },
    /// A port's notice ([`FrameRx::take_notice`]).
    Notice {
        port_ix: usize,
        text: String,
    },
    /// The port's interface went down (`ENETDOWN`); its receive thread goes on.
    LinkDown {
        port_ix: usize,
        error: io::Error,
    },
    /// The port's interface was deleted; its receive thread watches for it.
    Gone {
        port_ix: usize,
    },
    /// The port's socket was bound to a re-created interface of its name.
    Reattached {
        port_ix: usize,
        ifindex: u32,
    },
    Stop(String),
}

/// Ends a [`Live::run`] from another thread; cheap to clone.
#[derive(Clone)]
pub struct Stopper {
    events: SyncSender<Event>,
}

impl Stopper {
    /// Asks the switch thread to stop after the events before this one;
    /// `why` appears in the report (`SIGTERM`). False if it already stopped.
    pub fn stop(&self, why: &str) -> bool {
        self.events.send(Event::Stop(why.to_string())).is_ok()
    }
}

/// How long the switch thread waits for an event before it moves the
/// switch's clock anyway ([`Switch::tick`]).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Queues the frames the switch sends on its own (the IPVS master sync
/// daemon's messages, [`Switch::take_originated`]) on their ports; a frame
/// for a port the switch does not run on is dropped.
fn send_originated(switch: &mut Switch, ports: &mut [PortState], buf: &mut Vec<OutPacket>) {
    switch.take_originated(buf);
    for o in buf.drain(..) {
        if let Some(p) = ports.iter_mut().find(|p| p.port == o.port) {
            p.pending.push(&o.data);
        }
    }
}

/// A port as the switch thread keeps it.
struct PortState {
    port: u16,
    name: String,
    tx: Box<dyn FrameTx>,
    rx_frames: u64,
    tx_errors: u64,
    first_tx_error: Option<String>,
    rx_lost: u64,
    /// Times the interface went down.
    link_downs: u64,
    /// Times the port was bound to a re-created interface.
    reattaches: u64,
    /// The interface is deleted (and not back yet).
    gone: bool,
    /// Down since the last frame: the next frames bring a notice.
    down: bool,
    /// The interface was down when the port was opened.
    down_at_start: bool,
    /// Notices from opening the port, told when the run starts.
    warnings: Vec<String>,
    /// Copies waiting for the end of the batch being processed.
    pending: Frames,
}

impl PortState {
    /// Sends the pending copies, counting the ones refused as transmit
    /// errors and taking them out of `switch`'s sent counts (so sent plus
    /// transmit errors is what the pipeline forwarded to the port); returns
    /// the notice for the port's first refused frame of the run (told once).
    fn flush(&mut self, switch: &mut Switch) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let PortState { port, tx, pending, tx_errors, first_tx_error, .. } = self;
        let mut first = None;
        let frames: &Frames = pending;
        tx.send_batch(frames, &mut |i, e| {
            *tx_errors += 1;
            switch.uncount_refused(*port, frames.get(i).map_or(0, <[u8]>::len));
            if first_tx_error.is_none() {
                *first_tx_error = Some(e.to_string());
                first = Some(e);
            }
        });
        pending.clear();
        let e = first?;
        let hint = if e.raw_os_error() == Some(libc::EMSGSIZE) { " (a frame longer than the MTU)" } else { "" };
        Some(format!(
            "port {} (`{}`): cannot send{hint}: {e}; still running, refused frames count as transmit errors in the \
             report (told once)",
            self.port, self.name
        ))
    }
}

/// The event loop being assembled: ports and helper threads are added,
/// then [`Live::run`] runs the switch until a stop event.
pub struct Live {
    events_tx: SyncSender<Event>,
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    ports: Vec<PortState>,
    /// Where notices about ports go (none: nowhere).
    notices: Option<Notices>,
}

/// A sink for the one-line notices of a run (a port's link going down and
/// coming back, offloaded frames arriving), called on the switch thread.
pub type Notices = Box<dyn FnMut(&str) + Send>;

impl Default for Live {
    fn default() -> Live {
        Live::new()
    }
}

impl Live {
    /// An event loop without ports.
    pub fn new() -> Live {
        let (events_tx, events) = mpsc::sync_channel(QUEUE);
        Live {
            events_tx,
            events,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            ports: Vec::new(),
            notices: None,
        }
    }

    /// Sends the run's notices (a port's link down, receiving again,
    /// offloaded frames) to `sink`.
    pub fn set_notices(&mut self, sink: Notices) {
        self.notices = Some(sink);
    }

    /// Adds a port and starts its receive thread.
    pub fn add_port(&mut self, port: Port) -> Result<(), LiveError> {
        if let Some(p) = self.ports.iter().find(|p| p.port == port.port) {
            return Err(LiveError::Duplicate(format!(
                "port {} is given twice (`{}` and `{}`)",
                port.port, p.name, port.name
            )));
        }
        if let Some(p) = self.ports.iter().find(|p| p.name == port.name) {
            return Err(LiveError::Duplicate(format!(
                "interface `{}` is given twice (ports {} and {})",
                port.name, p.port, port.port
            )));
        }
        let port_ix = self.ports.len();
        let events = self.events_tx.clone();
        let stop = self.stop.clone();
        let mut rx = port.rx;
        let handle = thread::Builder::new()
            .name(format!("rx-{}", port.name))
            .spawn(move || receive_loop(port_ix, &mut *rx, &events, &stop))
            .map_err(|source| LiveError::Setup { step: "receive thread", source })?;
        self.threads.push(handle);
        self.ports.push(PortState {
            port: port.port,
            name: port.name,
            tx: port.tx,
            rx_frames: 0,
            tx_errors: 0,
            first_tx_error: None,
            rx_lost: 0,
            link_downs: 0,
            reattaches: 0,
            gone: false,
            down: false,
            down_at_start: port.down_at_start,
            warnings: port.warnings,
            pending: Frames::default(),
        });
        Ok(())
    }

    /// A handle that stops the loop.
    pub fn stopper(&self) -> Stopper {
        Stopper { events: self.events_tx.clone() }
    }

    /// Where control requests go: a function for [`ctl::serve`] that posts
    /// a request and returns false once the loop has stopped.
    pub fn submitter(&self) -> ctl::Submit {
        let events = self.events_tx.clone();
        Arc::new(move |req| events.send(Event::Control(req)).is_ok())
    }

    /// The flag helper threads poll; set when the loop ends.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// A helper thread to join when the loop ends (it must watch [`Live::stop_flag`]).
    pub fn adopt(&mut self, thread: JoinHandle<()>) {
        self.threads.push(thread);
    }

    /// Runs the switch on the ports until a stop event, or until a port
    /// fails (`Err`, after the other threads have stopped). Trace lines go
    /// to `trace` when the switch traces.
    pub fn run(
        mut self,
        switch: &mut Switch,
        dispatcher: &mut ctl::Dispatcher,
        mut trace: Option<&mut dyn Write>,
    ) -> Result<LiveReport, LiveError> {
        let specs: Vec<PortSpec> =
            self.ports.iter().map(|p| PortSpec { port: p.port, iface: p.name.clone() }).collect();
        check_ports(switch.program(), &specs)?;
        let ports: Vec<u16> = self.ports.iter().map(|p| p.port).collect();
        switch.set_ports(&ports);
        // Only the helpers hold senders now: if they all end, so does the loop.
        let Live { events_tx, events, stop, threads, ports, notices } = &mut self;
        let mut notice = |line: String| {
            if let Some(sink) = notices.as_mut() {
                sink(&line);
            }
        };
        drop(std::mem::replace(events_tx, mpsc::sync_channel(0).0));
        for p in ports.iter_mut() {
            for w in std::mem::take(&mut p.warnings) {
                notice(format!("port {} (`{}`): {w}", p.port, p.name));
            }
            if p.down_at_start {
                p.link_downs += 1;
                p.down = true;
                notice(format!(
                    "port {} (`{}`): link down at start (interface `{}` is down); still running, the port receives \
                     when it is up",
                    p.port, p.name, p.name
                ));
            }
        }
        let started = Instant::now();
        let cpu_before = sys::cpu_seconds();
        let mut control_requests = 0u64;
        let mut originated = Vec::new();
        let result = loop {
            // Idle for a second: the clock still moves (a partly filled
            // IPVS sync message is due 2 s after its first record).
            let event = match events.recv_timeout(IDLE_TICK) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    switch.tick(sys::monotonic_ns());
                    send_originated(switch, ports, &mut originated);
                    for p in ports.iter_mut() {
                        if let Some(line) = p.flush(switch) {
                            notice(line);
                        }
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break Ok("every input closed".to_string()),
            };
            match event {
                Event::Frames { port_ix, ts_ns, frames } => {
                    let Some(inp) = ports.get_mut(port_ix) else { continue };
                    inp.rx_frames += frames.len() as u64;
                    if inp.down {
                        inp.down = false;
                        notice(format!("port {} (`{}`): receiving again", inp.port, inp.name));
                    }
                    let in_port = inp.port;
                    // The hint pass runs HINT_DISTANCE frames ahead, as in replay.
                    frames.iter().take(HINT_DISTANCE).for_each(|f| switch.hint(f));
                    for (i, data) in frames.iter().enumerate() {
                        if let Some(ahead) = frames.get(i + HINT_DISTANCE) {
                            switch.hint(ahead);
                        }
                        let done = switch.process_in_place(in_port, data, ts_ns);
                        for &egress in done.ports {
                            if let Some(out) = ports.iter_mut().find(|p| p.port == egress) {
                                out.pending.push(done.data);
                            }
                        }
                        if let Some(w) = trace.as_deref_mut() {
                            let lines = switch.take_trace();
                            if lines.iter().try_for_each(|l| writeln!(w, "{l}")).is_err() {
                                trace = None; // nobody reads the trace any more
                            }
                        }
                    }
                    send_originated(switch, ports, &mut originated);
                    for p in ports.iter_mut() {
                        if let Some(line) = p.flush(switch) {
                            notice(line);
                        }
                    }
                }
                Event::Control(req) => {
                    control_requests += 1;
                    let reply = dispatcher.execute(switch, &req.line);
                    // The client may have gone; the command was applied anyway.
                    let _ = req.reply.send(reply);
                }
                Event::Failed { port_ix, error } => {
                    let (port, iface) = match ports.get(port_ix) {
                        Some(p) => (p.port, p.name.clone()),
                        None => (0, String::new()),
                    };
                    break Err(LiveError::PortFailed { port, iface, source: error });
                }
                Event::Notice { port_ix, text } => {
                    if let Some(p) = ports.get(port_ix) {
                        notice(format!("port {} (`{}`): {text}", p.port, p.name));
                    }
                }
                Event::LinkDown { port_ix, error } => {
                    let Some(p) = ports.get_mut(port_ix) else { continue };
                    p.link_downs += 1;
                    p.down = true;
                    notice(format!(
                        "port {} (`{}`): link down ({error}); still running, the port receives again when it is up",
                        p.port, p.name
                    ));
                }
                Event::Gone { port_ix } => {
                    let Some(p) = ports.get_mut(port_ix) else { continue };
                    p.gone = true;
                    p.down = true;
                    notice(format!(
                        "port {} (`{}`): interface deleted; still running, the port re-attaches when an interface \
                         named `{}` is back (checked every {} s)",
                        p.port,
                        p.name,
                        p.name,
                        ATTACH_CHECK.as_secs()
                    ));
                }
                Event::Reattached { port_ix, ifindex } => {
                    let Some(p) = ports.get_mut(port_ix) else { continue };
                    p.reattaches += 1;
                    p.gone = false;
                    p.down = true;
                    notice(format!(
                        "port {} (`{}`): interface re-created (index {ifindex}), re-attached; the port receives again \
                         when it is up",
                        p.port, p.name
                    ));
                }
                Event::Stop(why) => break Ok(why),
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        let cpu_after = sys::cpu_seconds();
        let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        stop.store(true, Ordering::Relaxed);
        // Receive threads blocked on a full queue wake up when it is gone.
        drop(std::mem::replace(events, mpsc::sync_channel(0).1));
        for t in threads.drain(..) {
            // A helper that panicked has nothing left to clean up.
            let _ = t.join();
        }
        let ports = self
            .ports
            .iter_mut()
            .map(|p| {
                p.rx_lost += p.tx.take_rx_lost();
                PortReport {
                    port: p.port,
                    name: p.name.clone(),
                    rx_frames: p.rx_frames,
                    tx_errors: p.tx_errors,
                    first_tx_error: p.first_tx_error.clone(),
                    rx_lost: p.rx_lost,
                    link_downs: p.link_downs,
                    reattaches: p.reattaches,
                    gone: p.gone,
                    down_at_start: p.down_at_start,
                }
            })
            .collect();
        result.map(|stopped_by| LiveReport { ports, stopped_by, seconds, cpu, control_requests })
    }
}

impl Drop for Live {
    /// A loop dropped without running (setup failed half-way) still stops
    /// its threads; they notice within [`POLL`].
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether a receive error means the interface went down (its socket
/// stays bound and receives again once it is up), not a failed port.
fn is_link_down(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENETDOWN)
}

/// A receive thread: batches of frames into the queue until shutdown or an
/// error; a link going down is reported and the thread goes on.
fn receive_loop(port_ix: usize, rx: &mut dyn FrameRx, events: &SyncSender<Event>, stop: &AtomicBool) {
    let mut downs_in_a_row = 0u32;
    let mut checked = Instant::now();
    let mut told = Told::Nothing;
    while !stop.load(Ordering::Relaxed) {
        let mut frames = Frames::with_capacity(BATCH, 4096);
        let result = rx.recv(&mut frames, BATCH);
        while let Some(text) = rx.take_notice() {
            if events.send(Event::Notice { port_ix, text }).is_err() {
                return;
            }
        }
        if !frames.is_empty() {
            let ts_ns = sys::monotonic_ns();
            if events.send(Event::Frames { port_ix, ts_ns, frames }).is_err() {
                return;
            }
        }
        match result {
            Ok(()) => downs_in_a_row = 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if is_link_down(&error) => {
                // Reported once per down; should the socket keep failing,
                // it is retried every POLL, not in a busy loop.
                if downs_in_a_row == 0 && events.send(Event::LinkDown { port_ix, error }).is_err() {
                    return;
                }
                if downs_in_a_row > 0 {
                    thread::sleep(POLL);
                }
                downs_in_a_row = downs_in_a_row.saturating_add(1);
            }
            Err(error) => {
                let _ = events.send(Event::Failed { port_ix, error });
                return;
            }
        }
        if checked.elapsed() >= ATTACH_CHECK {
            checked = Instant::now();
            if !check_attachment(port_ix, rx, events, &mut told) {
                return;
            }
        }
    }
}

/// What the last attachment checks of a port told, so that a state that
/// lasts is told once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    Nothing,
    Gone,
    Failed,
}

/// Asks `rx` whether it is still attached ([`FrameRx::attachment`]) and
/// tells the switch thread what changed: the interface deleted (once),
/// re-attached (with its warnings), or re-attaching failed (once until it
/// works). False when the switch thread is gone.
fn check_attachment(port_ix: usize, rx: &mut dyn FrameRx, events: &SyncSender<Event>, told: &mut Told) -> bool {
    let (event, now) = match rx.attachment() {
        Attachment::Attached => (None, Told::Nothing),
        Attachment::Gone => (Some(Event::Gone { port_ix }), Told::Gone),
        Attachment::Failed(e) => {
            let text = format!("cannot re-attach ({e}); trying again every {} s", ATTACH_CHECK.as_secs());
            (Some(Event::Notice { port_ix, text }), Told::Failed)
        }
        Attachment::Reattached { ifindex, warnings } => {
            *told = Told::Nothing;
            let back = events.send(Event::Reattached { port_ix, ifindex }).is_ok();
            return back && warnings.into_iter().all(|text| events.send(Event::Notice { port_ix, text }).is_ok());
        }
    };
    let fresh = now != *told;
    *told = now;
    match event {
        Some(e) if fresh => events.send(e).is_ok(),
        _ => true,
    }
}

/// One port's live counters (the switch's own per-port counts are in
/// [`Switch::report`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortReport {
    /// The switch port.
    pub port: u16,
    /// The interface.
    pub name: String,
    /// Frames read from the interface.
    pub rx_frames: u64,
    /// Frames the OS refused to send (not counted as sent in the switch's
    /// report: its sent count plus these is what the pipeline forwarded).
    pub tx_errors: u64,
    /// Why the first refused frame was refused.
    pub first_tx_error: Option<String>,
    /// Frames lost before the switch read them: the kernel dropped them
    /// from a full queue, or they were larger than [`RX_BUFFER`].
    pub rx_lost: u64,
    /// Times the interface went down while the switch ran.
    pub link_downs: u64,
    /// Times the port re-attached to its interface, deleted and re-created.
    pub reattaches: u64,
    /// The interface was deleted and not back when the run ended.
    pub gone: bool,
    /// The interface was down when the run started (counted in `link_downs`).
    pub down_at_start: bool,
}

/// How a live run went.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveReport {
    /// Per-port I/O counters.
    pub ports: Vec<PortReport>,
    /// What stopped the run (`SIGTERM`).
    pub stopped_by: String,
    /// How long it ran.
    pub seconds: f64,
    /// CPU seconds the process used meanwhile, (user, system): all its
    /// threads, so the kernel's share of sending and receiving shows.
    pub cpu: (f64, f64),
    /// Control requests executed.
    pub control_requests: u64,
}

impl LiveReport {
    /// The report's text: a summary line and a table of the ports.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Live: stopped by {} after {:.1} s; CPU {:.2} s user, {:.2} s system; {} control requests\n",
            self.stopped_by, self.seconds, self.cpu.0, self.cpu.1, self.control_requests
        );
        let rows: Vec<[String; 5]> = self
            .ports
            .iter()
            .map(|p| {
                [
                    p.port.to_string(),
                    p.name.clone(),
                    p.rx_frames.to_string(),
                    p.rx_lost.to_string(),
                    p.tx_errors.to_string(),
                ]
            })
            .collect();
        let head = ["port", "interface", "rx frames", "rx lost", "tx errors"];
        let mut widths = head.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut s = format!("  {:<w0$}  {:<w1$}", cells[0], cells[1], w0 = widths[0], w1 = widths[1]);
            for (c, w) in cells[2..].iter().zip(&widths[2..]) {
                s.push_str(&format!("  {c:>w$}"));
            }
            s + "\n"
        };
        out.push_str(&line(head));
        for r in &rows {
            out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
        }
        for p in &self.ports {
            if let Some(e) = &p.first_tx_error {
                out.push_str(&format!("  port {} (`{}`): first transmit error: {e}\n", p.port, p.name));
            }
            if p.link_downs > 0 {
                let times = if p.link_downs == 1 { "once".to_string() } else { format!("{} times", p.link_downs) };
                let first = if p.down_at_start { " (down at start)" } else { "" };
                out.push_str(&format!("  port {} (`{}`): link went down {times}{first}\n", p.port, p.name));
            }
            if p.reattaches > 0 {
                let times = if p.reattaches == 1 { "once".to_string() } else { format!("{} times", p.reattaches) };
                out.push_str(&format!("  port {} (`{}`): interface re-created, re-attached {times}\n", p.port, p.name));
            }
            if p.gone {
                out.push_str(&format!("  port {} (`{}`): interface deleted, not back at the end\n", p.port, p.name));
            }
        }
        out
    }
}

/// What [`start`] needs.
#[derive(Clone, Debug, Default)]
pub struct LiveConfig {
    /// The ports and their interfaces.
    pub ports: Vec<PortSpec>,
    /// Where to serve the control channel, if anywhere.
    pub ctl: Option<PathBuf>,
    /// How frames move (direct by default).
    pub io: IoPath,
}

/// Live mode set up by [`start`]: interfaces open, SIGINT and SIGTERM
/// blocked, the signal thread and the control server running.
pub struct Started {
    live: Live,
    /// Restores the signal mask when the run is over.
    signals: sys::StopSignals,
}

/// Sets up live mode on the interfaces of `config`: blocks SIGINT and
/// SIGTERM (before any thread starts, so every thread inherits the mask),
/// opens every port, starts the signal thread and the control server.
/// Nothing has been read from the interfaces yet when it returns.
pub fn start(config: &LiveConfig) -> Result<Started, LiveError> {
    let signals = sys::StopSignals::block().map_err(|source| LiveError::Setup { step: "signal mask", source })?;
    let mut live = Live::new();
    for spec in &config.ports {
        live.add_port(open_interface(spec, config.io)?)?;
    }
    let stopper = live.stopper();
    let stop = live.stop_flag();
    let set = signals.set();
    let waiter = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match sys::wait_stop_signal(&set, POLL.as_millis() as u32) {
                    Ok(Some(signo)) => {
                        stopper.stop(&sys::signal_name(signo));
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        stopper.stop(&format!("an error waiting for signals ({e})"));
                        return;
                    }
                }
            }
        })
        .map_err(|source| LiveError::Setup { step: "signal thread", source })?;
    live.adopt(waiter);
    if let Some(path) = &config.ctl {
        let server = ctl::serve(path, live.submitter(), live.stop_flag())
            .map_err(|source| LiveError::Ctl { path: path.clone(), source })?;
        live.adopt(server);
    }
    Ok(Started { live, signals })
}

impl Started {
    /// The event loop, to add helper threads and submitters before it runs
    /// (the health monitor: [`crate::ipvs::health::start`]).
    pub fn live_mut(&mut self) -> &mut Live {
        &mut self.live
    }

    /// Runs the switch until SIGINT or SIGTERM (or a port fails); see [`Live::run`].
    pub fn run(
        self,
        switch: &mut Switch,
        dispatcher: &mut ctl::Dispatcher,
        trace: Option<&mut dyn Write>,
    ) -> Result<LiveReport, LiveError> {
        let result = self.live.run(switch, dispatcher, trace);
        drop(self.signals);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::{Backend, SwitchOptions};

    #[test]
    fn port_specs() {
        assert_eq!("0=eth0".parse(), Ok(PortSpec { port: 0, iface: "eth0".into() }));
        assert_eq!("7=veth-d1".parse(), Ok(PortSpec { port: 7, iface: "veth-d1".into() }));
        assert_eq!("eth1".parse(), Ok(PortSpec { port: 0, iface: "eth1".into() }));
        assert!("x=eth0".parse::<PortSpec>().unwrap_err().contains("not a port number"));
        assert!("70000=eth0".parse::<PortSpec>().is_err());
        assert!("1=".parse::<PortSpec>().is_err());
        assert!("1=a-name-longer-than-15".parse::<PortSpec>().is_err());
        assert_eq!(PortSpec { port: 2, iface: "eth2".into() }.to_string(), "2=eth2");
    }

    #[test]
    fn missing_interface_names_it_and_lists_the_others() {
        let e = open_interface(&PortSpec { port: 0, iface: "p4lt-nonexist".into() }, IoPath::Direct).err().unwrap();
        let msg = e.to_string();
        assert!(msg.starts_with("interface `p4lt-nonexist` does not exist"), "{msg}");
        assert!(msg.contains("lo"), "{msg}");
    }

    /// Hardware GRO (`rx-gro-hw`) on is told like GRO and LRO, with its
    /// own `ethtool -K` word in the command; other features are not.
    #[test]
    fn hardware_gro_is_a_merging_offload_with_its_command() {
        let features = [
            ("rx-gro", false),
            ("tx-checksumming", true),
            ("rx-gro-hw", true),
            ("rx-lro", false),
            ("rx-gro-list", true),
        ];
        let on = sys::merging_offloads_in(features);
        assert_eq!(on, ["rx-gro-hw"]);
        let text = offload_advice("eth0", &on).unwrap();
        assert!(text.starts_with("receive offload on (rx-gro-hw): "), "{text}");
        assert!(text.ends_with("Turn it off: `ethtool -K eth0 rx-gro-hw off`"), "{text}");
        let all = sys::merging_offloads_in([("rx-gro-hw", true), ("rx-lro", true), ("rx-gro", true)]);
        assert_eq!(all, ["gro", "lro", "rx-gro-hw"]);
        let text = offload_advice("eth1", &all).unwrap();
        assert!(text.ends_with("`ethtool -K eth1 gro off lro off rx-gro-hw off`"), "{text}");
        assert_eq!(offload_advice("eth0", &sys::merging_offloads_in([("rx-gro", false)])), None);
        assert!(offload_notice("eth2").contains("`ethtool -K eth2 gro off lro off rx-gro-hw off`"));
    }

    #[test]
    fn permission_error_says_what_is_needed() {
        let e =
            LiveError::Open { iface: "eth0".into(), step: "socket", source: io::Error::from_raw_os_error(libc::EPERM) };
        let msg = e.to_string();
        assert!(msg.starts_with("cannot open interface `eth0` (socket): Operation not permitted"), "{msg}");
        assert!(msg.ends_with("needs CAP_NET_RAW (run as root)"), "{msg}");
    }

    /// Builds the test router switch (see `mem::tests` for its program).
    fn router() -> Switch {
        let ir = mem::tests::router_ir();
        Switch::new(ir, SwitchOptions { backend: Backend::Interp, trace: false }).unwrap()
    }

    #[test]
    fn forwards_between_memory_ports_applies_control_and_stops() {
        let mut live = Live::new();
        let (p0, w0) = mem::wire(0, "m0");
        let (p1, w1) = mem::wire(1, "m1");
        live.add_port(p0).unwrap();
        live.add_port(p1).unwrap();
        assert!(matches!(live.add_port(mem::wire(1, "m2").0), Err(LiveError::Duplicate(_))));
        let submit = live.submitter();
        let stopper = live.stopper();
        let driver = thread::spawn(move || {
            let frame = mem::tests::frame_to(0x0a00_0002);
            // Frames and requests come from different threads, so wait for
            // each frame to be counted before the next request.
            let received = |n: usize| received(&submit, n);
            // No route yet: dropped.
            w0.inject(frame.clone());
            assert!(received(1));
            let reply = ctl::submit_blocking(&submit, "table_add routes fwd 10.0.0.0/8 => 1").unwrap();
            assert_eq!(reply.status, ctl::Status::Ok, "{reply:?}");
            assert_eq!(reply.out, ["Adding entry to lpm match table I.routes", "Entry has been added with handle 0"]);
            w0.inject(frame.clone());
            let got = w1.take(Duration::from_secs(5)).expect("a frame on port 1");
            assert_eq!(got, frame);
            let bad = ctl::submit_blocking(&submit, "table_add routes nosuch 10.0.0.0/8 => 1").unwrap();
            assert_eq!(bad.status, ctl::Status::Error);
            let reply = ctl::submit_blocking(&submit, "table_delete routes 0").unwrap();
            assert_eq!(reply.status, ctl::Status::Ok, "{reply:?}");
            w0.inject(frame);
            assert!(received(3));
            assert!(w1.take(Duration::from_millis(50)).is_none());
            assert!(stopper.stop("test"));
        });
        let mut sw = router();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).unwrap();
        driver.join().unwrap();
        assert_eq!(report.stopped_by, "test");
        // Two `report` polls at least, the add, the refused add and the delete.
        assert!(report.control_requests >= 5);
        assert_eq!(report.ports[0].rx_frames, 3);
        assert_eq!(sw.stats().rx_packets(), 3);
        assert_eq!(sw.stats().tx_packets(), 1);
        let text = report.render();
        assert!(text.starts_with("Live: stopped by test after"), "{text}");
        assert!(text.contains("  0     m0"), "{text}");
    }

    /// Whether the switch behind `submit` reports `n` packets received
    /// within 5 s (asked every 10 ms).
    fn received(submit: &ctl::Submit, n: usize) -> bool {
        let want = format!("Packets: {n} received");
        (0..500).any(|_| {
            let r = ctl::submit_blocking(submit, "report").unwrap();
            r.out[0].starts_with(&want) || {
                thread::sleep(Duration::from_millis(10));
                false
            }
        })
    }

    /// Stops `live` (from another thread) once the switch reports `n`
    /// packets received.
    fn stop_after(live: &Live, n: usize) -> thread::JoinHandle<bool> {
        let (submit, stopper) = (live.submitter(), live.stopper());
        thread::spawn(move || {
            let seen = received(&submit, n);
            stopper.stop("test") && seen
        })
    }

    /// More frames than a batch holds, queued at once: they leave in the
    /// order they came, every one.
    #[test]
    fn batched_frames_leave_in_order() {
        let mut live = Live::new();
        let (p0, w0) = mem::wire(0, "m0");
        let (p1, w1) = mem::wire(1, "m1");
        live.add_port(p0).unwrap();
        live.add_port(p1).unwrap();
        let n = 2 * BATCH + 5;
        let frames: Vec<Vec<u8>> = (0..n as u32).map(|i| mem::tests::frame_to(0x0a00_0000 + i)).collect();
        frames.iter().for_each(|f| w0.inject(f.clone()));
        let stopping = stop_after(&live, n);
        let mut sw = router();
        sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1", "test").unwrap();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).unwrap();
        assert!(stopping.join().unwrap(), "the switch saw {n} frames");
        assert_eq!(report.ports[0].rx_frames, n as u64);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(w1.take(Duration::from_secs(1)).as_ref(), Some(f), "frame {i}");
        }
        assert_eq!(w1.take(Duration::from_millis(10)), None);
    }

    /// Live mode runs the program's hint pass once for every frame
    /// (lb.p4lite's parser hints the connection table, which counts them).
    #[test]
    fn every_frame_gets_its_hint_pass() {
        use crate::switch::{tests as st, Backend, SwitchOptions};
        let mut live = Live::new();
        let (p0, w0) = mem::wire(0, "m0");
        live.add_port(p0).unwrap();
        let n = 2 * BATCH + HINT_DISTANCE + 1;
        (0..n).for_each(|_| w0.inject(st::syn()));
        let stopping = stop_after(&live, n);
        let options = SwitchOptions { backend: Backend::Jit, trace: false };
        let mut sw = Switch::new(st::compile(&st::example("lb")), options).unwrap();
        live.run(&mut sw, &mut ctl::Dispatcher::new(), None).unwrap();
        assert!(stopping.join().unwrap(), "the switch saw {n} frames");
        assert_eq!(sw.externs().director().map(|d| d.conns.prefetch_hints()), Some(n as u64));
    }

    #[test]
    fn ports_must_fit_egress_spec() {
        let ir = mem::tests::router_ir();
        let spec = |port| PortSpec { port, iface: "x".into() };
        assert!(check_ports(&ir, &[spec(0), spec(511)]).is_ok());
        let msg = check_ports(&ir, &[spec(1), spec(512)]).unwrap_err().to_string();
        assert!(msg.starts_with("port 512 (`x`) is beyond the largest port the program can address (511"), "{msg}");
    }

    #[test]
    fn a_failing_port_ends_the_run_with_its_name() {
        let mut live = Live::new();
        let (p0, w0) = mem::wire(3, "m3");
        live.add_port(p0).unwrap();
        w0.fail(io::Error::from_raw_os_error(libc::EIO));
        let e = live.run(&mut router(), &mut ctl::Dispatcher::new(), None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("port 3 (`m3`): receive failed: Input/output error"), "{msg}");
    }

    /// A loop with memory ports 0 (`m0`) and 1 (`m1`), their wires, and
    /// the notices of the run as they are told.
    fn two_ports_with_notices() -> (Live, mem::Wire, mem::Wire, Arc<std::sync::Mutex<Vec<String>>>) {
        let mut live = Live::new();
        let (p0, w0) = mem::wire(0, "m0");
        let (p1, w1) = mem::wire(1, "m1");
        live.add_port(p0).unwrap();
        live.add_port(p1).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        live.set_notices(Box::new(move |l| log.lock().unwrap().push(l.to_string())));
        (live, w0, w1, seen)
    }

    /// A port whose link goes down (`ENETDOWN`, as the kernel reports it
    /// on the socket of an interface set down) does not end the run: a
    /// notice names it, the frames that come once it is up are forwarded
    /// as before (with a second notice), and the report counts the down.
    #[test]
    fn a_link_going_down_is_a_notice_and_the_run_goes_on() {
        let (live, w0, w1, seen) = two_ports_with_notices();
        let frame = mem::tests::frame_to(0x0a00_0002);
        w0.inject(frame.clone());
        w0.fail(io::Error::from_raw_os_error(libc::ENETDOWN));
        w0.inject(frame.clone());
        let stopping = stop_after(&live, 2);
        let mut sw = router();
        sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1", "test").unwrap();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).expect("the run survives the link down");
        assert!(stopping.join().unwrap(), "both frames reached the switch");
        assert_eq!(w1.take(Duration::from_secs(1)), Some(frame.clone()));
        assert_eq!(w1.take(Duration::from_secs(1)), Some(frame), "the frame after the down is forwarded");
        assert_eq!(report.stopped_by, "test");
        assert_eq!(report.ports[0].link_downs, 1);
        assert_eq!(report.ports[1].link_downs, 0);
        assert!(report.render().contains("  port 0 (`m0`): link went down once\n"), "{}", report.render());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].starts_with("port 0 (`m0`): link down (Network is down"), "{seen:?}");
        assert_eq!(seen[1], "port 0 (`m0`): receiving again");
    }

    /// A port whose interface was down when it was opened starts the run
    /// with one link-down notice, counted like a later down; its first
    /// frames (the interface came up) bring `receiving again` and are
    /// forwarded.
    #[test]
    fn a_link_down_at_start_is_a_notice_and_counted() {
        let mut live = Live::new();
        let (mut p0, w0) = mem::wire(0, "m0");
        let (p1, w1) = mem::wire(1, "m1");
        p0.down_at_start = true;
        live.add_port(p0).unwrap();
        live.add_port(p1).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        live.set_notices(Box::new(move |l| log.lock().unwrap().push(l.to_string())));
        let frame = mem::tests::frame_to(0x0a00_0002);
        w0.inject(frame.clone());
        let stopping = stop_after(&live, 1);
        let mut sw = router();
        sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1", "test").unwrap();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).expect("a down port does not stop the run");
        assert!(stopping.join().unwrap());
        assert_eq!(w1.take(Duration::from_secs(1)), Some(frame));
        assert_eq!((report.ports[0].link_downs, report.ports[0].down_at_start), (1, true));
        assert_eq!((report.ports[1].link_downs, report.ports[1].down_at_start), (0, false));
        let text = report.render();
        assert!(text.contains("  port 0 (`m0`): link went down once (down at start)\n"), "{text}");
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            [
                "port 0 (`m0`): link down at start (interface `m0` is down); still running, the port receives when \
                 it is up",
                "port 0 (`m0`): receiving again",
            ],
        );
    }

    /// Frames the OS refuses to send (here: longer than the egress port's
    /// MTU) are one notice on the first, naming the port and the reason,
    /// and counted in the report; the run goes on.
    #[test]
    fn a_refused_send_is_told_once_and_counted() {
        let (live, w0, w1, seen) = two_ports_with_notices();
        w1.refuse_sends(libc::EMSGSIZE);
        (0..3).for_each(|_| w0.inject(mem::tests::frame_to(0x0a00_0002)));
        let stopping = stop_after(&live, 3);
        let mut sw = router();
        sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1", "test").unwrap();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).unwrap();
        assert!(stopping.join().unwrap());
        assert_eq!(report.ports[1].tx_errors, 3);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with("port 1 (`m1`): cannot send (a frame longer than the MTU): Message too long"),
            "{seen:?}"
        );
    }

    /// The switch's report counts as sent only the frames the OS accepted:
    /// two frames leave, then three are refused; sent (2) plus transmit
    /// errors (3) is what the pipeline forwarded (5), in the totals and in
    /// the port's row, packets and bytes.
    #[test]
    fn sent_counts_only_frames_the_os_accepted() {
        let (live, w0, w1, _) = two_ports_with_notices();
        let frame = mem::tests::frame_to(0x0a00_0002);
        let submit = live.submitter();
        let stopper = live.stopper();
        let (f, w1_in) = (frame.clone(), w1);
        let driver = thread::spawn(move || {
            (0..2).for_each(|_| w0.inject(f.clone()));
            assert!(received(&submit, 2));
            // Both were sent before the `report` that counted them ran.
            assert_eq!(w1_in.take(Duration::from_secs(1)), Some(f.clone()));
            assert_eq!(w1_in.take(Duration::from_secs(1)), Some(f.clone()));
            w1_in.refuse_sends(libc::EMSGSIZE);
            (0..3).for_each(|_| w0.inject(f.clone()));
            assert!(received(&submit, 5));
            let live_report = ctl::submit_blocking(&submit, "report").unwrap();
            assert!(live_report.out[0].starts_with("Packets: 5 received, 2 sent, 0 dropped"), "{live_report:?}");
            assert!(stopper.stop("test"));
        });
        let mut sw = router();
        sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1", "test").unwrap();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).unwrap();
        driver.join().unwrap();
        assert_eq!(report.ports[1].tx_errors, 3);
        let s = sw.stats();
        assert_eq!((s.rx_packets(), s.tx_packets(), s.dropped()), (5, 2, 0));
        let len = frame.len() as u64;
        assert_eq!((s.ports[&1].tx_packets, s.ports[&1].tx_bytes), (2, 2 * len));
        assert!(sw.report().starts_with("Packets: 5 received, 2 sent, 0 dropped\n"), "{}", sw.report());
    }

    /// A port whose interface is deleted (`ENETDOWN`, then the checks find
    /// no interface of its name) is told once as deleted; the other port
    /// forwards meanwhile; when the interface is re-created the port
    /// re-attaches (its warnings told), forwards again, and the report
    /// counts the re-attachment. The port warnings given when it was
    /// opened are told when the run starts.
    #[test]
    fn a_deleted_interface_is_told_once_and_re_attached_when_back() {
        let mut live = Live::new();
        let (p0, w0) = mem::wire(0, "m0");
        let (mut p1, w1) = mem::wire(1, "m1");
        p1.warnings.push("offloads on".into());
        live.add_port(p0).unwrap();
        live.add_port(p1).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        live.set_notices(Box::new(move |l| log.lock().unwrap().push(l.to_string())));
        let watch = seen.clone();
        // Whether a notice containing `what` comes within 5 s.
        let told = move |what: &str| {
            (0..100).any(|_| {
                watch.lock().unwrap().iter().any(|l| l.contains(what)) || {
                    thread::sleep(Duration::from_millis(50));
                    false
                }
            })
        };
        let (submit, stopper) = (live.submitter(), live.stopper());
        let frame = mem::tests::frame_to(0x0a00_0002);
        let back = mem::tests::frame_to(0x0b00_0002);
        let (f, b) = (frame.clone(), back.clone());
        let driver = thread::spawn(move || {
            w1.fail(io::Error::from_raw_os_error(libc::ENETDOWN));
            w1.delete();
            assert!(told("interface deleted"), "no deletion notice");
            // Port 0 still forwards (to port 1's socket, gone or not).
            w0.inject(f.clone());
            assert_eq!(w1.take(Duration::from_secs(5)), Some(f.clone()));
            // Two more checks while deleted: told once.
            thread::sleep(2 * ATTACH_CHECK + POLL);
            w1.recreate(42);
            assert!(told("re-attached"), "no re-attachment notice");
            w1.inject(b.clone());
            assert_eq!(w0.take(Duration::from_secs(5)), Some(b));
            assert!(received(&submit, 2));
            assert!(stopper.stop("test"));
        });
        let mut sw = router();
        sw.apply_commands("table_add routes fwd 10.0.0.0/8 => 1\ntable_add routes fwd 11.0.0.0/8 => 0", "test")
            .unwrap();
        let report = live.run(&mut sw, &mut ctl::Dispatcher::new(), None).expect("the run survives the deletion");
        driver.join().unwrap();
        assert_eq!((report.ports[1].link_downs, report.ports[1].reattaches, report.ports[1].gone), (1, 1, false));
        assert_eq!((report.ports[0].reattaches, report.ports[0].gone), (0, false));
        let text = report.render();
        assert!(text.contains("  port 1 (`m1`): interface re-created, re-attached once\n"), "{text}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0], "port 1 (`m1`): offloads on", "{seen:?}");
        assert_eq!(seen.iter().filter(|l| l.contains("interface deleted")).count(), 1, "{seen:?}");
        let at = seen.iter().position(|l| l.contains("re-attached")).unwrap();
        assert_eq!(
            seen[at],
            "port 1 (`m1`): interface re-created (index 42), re-attached; the port receives again when it is up"
        );
        assert_eq!(seen[at + 1], "port 1 (`m1`): re-created as index 42");
        assert_eq!(seen[at + 2], "port 1 (`m1`): receiving again");
    }

    /// A port whose interface is deleted and never comes back: the report
    /// says so.
    #[test]
    fn a_port_still_deleted_at_the_end_is_in_the_report() {
        let mut live = Live::new();
        let (p0, w0) = mem::wire(0, "m0");
        live.add_port(p0).unwrap();
        w0.delete();
        let stopper = live.stopper();
        let stopping = thread::spawn(move || {
            thread::sleep(ATTACH_CHECK + 2 * POLL);
            stopper.stop("test")
        });
        let report = live.run(&mut router(), &mut ctl::Dispatcher::new(), None).unwrap();
        assert!(stopping.join().unwrap());
        assert!(report.ports[0].gone);
        assert!(
            report.render().contains("  port 0 (`m0`): interface deleted, not back at the end\n"),
            "{}",
            report.render()
        );
    }
}
