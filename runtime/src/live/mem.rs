//! In-memory ports: the live event loop without interfaces or privileges,
//! for tests. [`wire`] returns a [`Port`] for the loop and the [`Wire`]
//! the test holds: frames injected on the wire arrive on the port, frames
//! the switch sends come out of the wire.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Attachment, FrameRx, FrameTx, Frames, Port, POLL};

/// The test's end of an in-memory port.
pub struct Wire {
    inject: Sender<io::Result<Vec<u8>>>,
    sent: Receiver<Vec<u8>>,
    /// What the port's next attachment checks find.
    attach: Arc<Mutex<MemAttach>>,
    /// The OS error sending on the port fails with (0: none).
    refuse: Arc<AtomicI32>,
}

/// The attachment of an in-memory port, as a test sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemAttach {
    Attached,
    Gone,
    /// Re-created with this index: the next check re-attaches.
    Back(u32),
}

impl Wire {
    /// Delivers `frame` to the port, as if it arrived from the wire.
    pub fn inject(&self, frame: Vec<u8>) {
        // The loop may have stopped; a frame nobody reads is simply lost.
        let _ = self.inject.send(Ok(frame));
    }

    /// Makes the port's receive side fail with `error` (after the frames
    /// injected before).
    pub fn fail(&self, error: io::Error) {
        let _ = self.inject.send(Err(error));
    }

    /// The next frame the switch sent out of the port, waiting up to `timeout`.
    pub fn take(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.sent.recv_timeout(timeout).ok()
    }

    /// Makes every send on the port fail with OS error `errno` (0: succeed again).
    pub fn refuse_sends(&self, errno: i32) {
        self.refuse.store(errno, Ordering::Relaxed);
    }

    /// Makes the port's attachment checks find its interface deleted.
    pub fn delete(&self) {
        self.set_attach(MemAttach::Gone);
    }

    /// Makes the port's next attachment check find its interface
    /// re-created with index `ifindex` (and re-attach).
    pub fn recreate(&self, ifindex: u32) {
        self.set_attach(MemAttach::Back(ifindex));
    }

    /// Sets what the port's attachment checks find.
    fn set_attach(&self, to: MemAttach) {
        if let Ok(mut a) = self.attach.lock() {
            *a = to;
        }
    }
}

/// A connected in-memory port `port` named `name`, and its wire.
pub fn wire(port: u16, name: &str) -> (Port, Wire) {
    let (inject, rx) = mpsc::channel();
    let (tx, sent) = mpsc::channel();
    let attach = Arc::new(Mutex::new(MemAttach::Attached));
    let refuse = Arc::new(AtomicI32::new(0));
    let p = Port {
        port,
        name: name.to_string(),
        rx: Box::new(MemRx { rx, failed: None, attach: attach.clone() }),
        tx: Box::new(MemTx(tx, refuse.clone())),
        warnings: Vec::new(),
        down_at_start: false,
    };
    (p, Wire { inject, sent, attach, refuse })
}

struct MemRx {
    /// What the attachment checks find (set by the [`Wire`]).
    attach: Arc<Mutex<MemAttach>>,
    rx: Receiver<io::Result<Vec<u8>>>,
    /// An injected failure found behind frames already taken: reported by
    /// the next `recv`, after those frames are delivered.
    failed: Option<io::Error>,
}

impl FrameRx for MemRx {
    /// Every frame injected by now (up to `max`), as a socket's queue.
    fn recv(&mut self, batch: &mut Frames, max: usize) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the test's end of the wire is gone");
        match self.rx.recv_timeout(POLL) {
            Ok(Ok(frame)) => batch.push(&frame),
            Ok(Err(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => return Err(gone()),
        }
        for _ in 1..max {
            match self.rx.try_recv() {
                Ok(Ok(frame)) => batch.push(&frame),
                Ok(Err(e)) => {
                    self.failed = Some(e);
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.failed = Some(gone());
                    break;
                }
            }
        }
        Ok(())
    }

    /// What the test set with [`Wire::delete`] and [`Wire::recreate`]; a
    /// re-creation is found once, then the port is attached.
    fn attachment(&mut self) -> Attachment {
        let Ok(mut a) = self.attach.lock() else { return Attachment::Attached };
        match *a {
            MemAttach::Attached => Attachment::Attached,
            MemAttach::Gone => Attachment::Gone,
            MemAttach::Back(ifindex) => {
                *a = MemAttach::Attached;
                Attachment::Reattached { ifindex, warnings: vec![format!("re-created as index {ifindex}")] }
            }
        }
    }
}

/// The sending side: frames go to the wire, unless the test made it refuse them.
struct MemTx(Sender<Vec<u8>>, Arc<AtomicI32>);

impl FrameTx for MemTx {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        match self.1.load(Ordering::Relaxed) {
            0 => {}
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
        self.0.send(frame.to_vec()).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "nobody reads the wire"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p4lite_compiler::ir::Program;

    /// A small LPM router with a counter and a register, for the live and
    /// control-channel tests: `routes` maps the IPv4 destination to `fwd(port)`,
    /// `per_port` counts packets by egress port, `last_len` keeps the last
    /// packet's length in cell 0.
    pub(crate) const ROUTER: &str = r#"
header ethernet_t { bit<48> dst; bit<48> src; bit<16> ether_type; }
header ipv4_t { bit<4> version; bit<4> ihl; bit<8> tos; bit<16> len; bit<16> id;
  bit<3> flags; bit<13> frag; bit<8> ttl; bit<8> proto; bit<16> csum;
  bit<32> src_addr; bit<32> dst_addr; }
struct headers_t { ethernet_t ethernet; ipv4_t ipv4; }
struct metadata_t { bit<8> unused; }
parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {
  state start { pkt.extract(hdr.ethernet); pkt.extract(hdr.ipv4); transition accept; }
}
control I(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t std) {
  counter(4) per_port;
  register<bit<32>>(4) last_len;
  action fwd(bit<9> port) { std.egress_spec = port; }
  action drop() { mark_to_drop(std); }
  table routes { key = { hdr.ipv4.dst_addr : lpm; } actions = { fwd; drop; } default_action = drop(); size = 16; }
  apply {
    routes.apply();
    per_port.count((bit<32>)std.egress_spec);
    last_len.write(0, std.packet_length);
  }
}
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.ethernet); pkt.emit(hdr.ipv4); } }
Pipeline(P(), I(), D()) main;
"#;

    /// [`ROUTER`] compiled.
    pub(crate) fn router_ir() -> Program {
        crate::switch::tests::compile(ROUTER)
    }

    /// An Ethernet + IPv4 frame (34 bytes, no payload) to `dst`.
    pub(crate) fn frame_to(dst: u32) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 20, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1]);
        f.extend_from_slice(&dst.to_be_bytes());
        f
    }

    #[test]
    fn a_wire_carries_frames_both_ways_and_reports_errors() {
        let (mut port, wire) = wire(5, "w");
        let mut batch = Frames::default();
        port.rx.recv(&mut batch, 8).unwrap();
        assert!(batch.is_empty());
        wire.inject(vec![1, 2, 3]);
        port.rx.recv(&mut batch, 8).unwrap();
        assert_eq!(batch.iter().collect::<Vec<_>>(), [&[1u8, 2, 3][..]]);
        port.tx.send(&[9, 9]).unwrap();
        assert_eq!(wire.take(Duration::from_secs(1)), Some(vec![9, 9]));
        // Everything queued comes in one batch, up to the limit, in order;
        // a failure behind frames waits until they are delivered.
        batch.clear();
        for i in 0..5u8 {
            wire.inject(vec![i; usize::from(i) + 1]);
        }
        wire.fail(io::Error::other("boom"));
        port.rx.recv(&mut batch, 3).unwrap();
        assert_eq!(batch.iter().collect::<Vec<_>>(), [&[0u8][..], &[1, 1], &[2, 2, 2]]);
        port.rx.recv(&mut batch, 3).unwrap();
        assert_eq!(batch.len(), 5);
        assert_eq!(batch.get(4), Some(&[4u8; 5][..]));
        assert_eq!(batch.get(5), None);
        assert_eq!(port.rx.recv(&mut batch, 3).unwrap_err().to_string(), "boom");
        // A batch goes out in order; the default `send_batch` sends each.
        let mut refused = Vec::new();
        port.tx.send_batch(&batch, &mut |i, e| refused.push((i, e.to_string())));
        assert!(refused.is_empty());
        for i in 0..5u8 {
            assert_eq!(wire.take(Duration::from_secs(1)), Some(vec![i; usize::from(i) + 1]));
        }
        drop(wire);
        assert!(port.rx.recv(&mut batch, 3).is_err());
        assert!(port.tx.send(&[1]).is_err());
        port.tx.send_batch(&batch, &mut |i, e| refused.push((i, e.to_string())));
        assert_eq!(refused.len(), 5, "every frame of the batch is refused: {refused:?}");
        assert_eq!(refused[4].0, 4);
    }
}
