//! All of the live driver's libc code: AF_PACKET socket options (and
//! binding a socket again when its interface is re-created), interface
//! indexes, the receive offloads `ethtool -k` shows, the monotonic clock, readiness polling and the signal mask; and the health
//! monitor's two calls std lacks (a TCP connect from a chosen source
//! address with a timeout, killing a process group); and for the connection
//! table, huge-page advice, a cache prefetch hint and the arena's own
//! mapping ([`MappedVec`], in `sys/mapped.rs`). Each function is
//! a thin wrapper that checks the return value and reports `io::Error`
//! (the two hints are best effort and only say whether they were taken);
//! nothing here panics (except `MappedVec` where a `Vec` would abort: out of
//! memory) and nothing outside this module is `unsafe`.

mod mapped;

pub use mapped::MappedVec;

use std::io;
use std::mem;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// `SOL_PACKET` option (Linux 4.20, `linux/if_packet.h`): do not deliver
/// frames this host transmits on the interface to this socket. Not in the
/// `libc` crate.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `SOL_PACKET` option: `struct tpacket_stats`, reset by each read.
const PACKET_STATISTICS: libc::c_int = 6;
/// `sll_pkttype` of frames this host sends (`linux/if_packet.h`).
const PACKET_OUTGOING: u32 = 4;
/// `SO_ATTACH_FILTER` (the same value on every architecture Linux/x86 and
/// Arm use; `libc` exports it only for some targets).
const SO_ATTACH_FILTER: libc::c_int = 26;
/// `PACKET_AUXDATA` (`linux/if_packet.h`): a `tpacket_auxdata` with every frame.
const PACKET_AUXDATA: libc::c_int = 8;
/// `tp_status` bit: the frame's transport checksum is left for an offload
/// to fill in (`CHECKSUM_PARTIAL`).
pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `tp_status` bit: the frame is a TCP super-frame (GSO/GRO), not one segment.
pub const TP_STATUS_GSO_TCP: u32 = 1 << 8;

/// `struct tpacket_auxdata` (`linux/if_packet.h`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

/// `struct tpacket_stats` from `linux/if_packet.h`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

/// Hints the CPU to bring the cache lines holding `*r` into its caches
/// (x86-64 `PREFETCHT0`; nothing on other architectures): the line of its
/// first byte and the line of its last, so a value of up to 64 bytes that
/// straddles two lines (half of the 48-byte connection entries do)
/// arrives whole; when both bytes share a line the second hint finds it
/// already on its way. It reads and changes no value and never faults, so
/// it only ever costs or saves time.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let first = (r as *const T).cast::<i8>();
        let last = first.wrapping_add(mem::size_of::<T>().saturating_sub(1));
        // SAFETY: PREFETCHT0 is a hint (SSE, part of the x86-64 baseline): it
        // never faults, even for bad addresses; both pointers lie within `*r`
        // (`last` is `first` for a zero-sized `T`).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(first);
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Asks the kernel to back the allocation of `v` (its whole capacity) with
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`). Call it before the
/// memory is first written: pages already touched stay small until the
/// kernel's background scanner collapses them. Only the 4 KiB pages wholly
/// inside the allocation are advised. Best effort: the advice never changes
/// the memory's contents, and where THP is off or unsupported the error is
/// ignored (everything works the same, only with more TLB misses); the
/// result says whether the kernel took the advice.
pub fn advise_huge_pages<T>(v: &Vec<T>) -> bool {
    const PAGE: usize = 4096;
    let start = v.as_ptr() as usize;
    let end = start + v.capacity() * size_of::<T>();
    let first = start.next_multiple_of(PAGE);
    let last = end & !(PAGE - 1);
    // SAFETY: the range lies inside `v`'s live allocation, and
    // MADV_HUGEPAGE only changes how the kernel backs it, never what it
    // holds.
    last > first && unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE) } == 0
}

/// An unbound `AF_PACKET` raw socket. Protocol 0 means it receives nothing
/// until it is bound with a protocol (pnet binds it to one interface with
/// `ETH_P_ALL`), so no frame of another interface can sneak into its queue
/// between `socket` and `bind`.
pub fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a socket is kept from reading back the frames sent on its interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutgoingFilter {
    /// The kernel's `PACKET_IGNORE_OUTGOING` (Linux 4.20 and later).
    SocketOption,
    /// A classic BPF filter that drops `pkttype == PACKET_OUTGOING` (older kernels).
    Bpf,
}

/// Makes `fd` skip frames the host transmits (`sll_pkttype ==
/// PACKET_OUTGOING`): with `PACKET_IGNORE_OUTGOING` when the kernel has it,
/// else with a four-instruction BPF filter on the packet type.
pub fn ignore_outgoing(fd: &OwnedFd) -> io::Result<OutgoingFilter> {
    let one: libc::c_int = 1;
    if setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one).is_ok() {
        return Ok(OutgoingFilter::SocketOption);
    }
    attach_outgoing_bpf(fd)?;
    Ok(OutgoingFilter::Bpf)
}

/// The fallback of [`ignore_outgoing`]: a classic BPF socket filter that
/// drops frames whose packet type is `PACKET_OUTGOING`.
fn attach_outgoing_bpf(fd: &OwnedFd) -> io::Result<()> {
    // ld pkttype; jeq #OUTGOING, drop, keep; keep: ret #-1; drop: ret #0
    let mut prog = [
        bpf(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32),
        bpf(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 1, 0, PACKET_OUTGOING),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        bpf(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ];
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog)
}

fn bpf(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt, jf, k }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the given size for the call.
    let r = unsafe {
        libc::setsockopt(fd, level, name, (value as *const T).cast(), mem::size_of::<T>() as libc::socklen_t)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Asks for a receive buffer of `bytes` on `fd`: `SO_RCVBUFFORCE` (root
/// may exceed `net.core.rmem_max`), else `SO_RCVBUF` (capped by it). A
/// deeper queue rides out the moments the receive thread is not scheduled.
pub fn set_receive_buffer(fd: &OwnedFd, bytes: usize) -> io::Result<()> {
    let n = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &n)
        .or_else(|_| setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, &n))
}

/// Asks the kernel for each frame's `tpacket_auxdata` on `fd`, whose
/// status [`recv_frames`] returns (offloaded frames show there).
pub fn want_aux_status(fd: &OwnedFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_AUXDATA, &one)
}

/// Control space for one `tpacket_auxdata` message, in `u64`s (aligned as
/// a `cmsghdr` must be): `CMSG_SPACE(20)` is 40 bytes on 64-bit Linux.
const AUX_SPACE: usize = 8;

/// The most frames one [`recv_frames`] call reads: its message headers,
/// buffer descriptors and control space live on the stack, not in
/// vectors allocated per call (a busy port calls it per batch, an idle
/// one per poll).
const MAX_RECV: usize = 64;

/// Reads the frames queued on a non-blocking packet socket, without
/// waiting, with one `recvmmsg`: frame `i` goes to `buf[i * slot ..]` and
/// its real length to `lens[i]` (larger than `slot` when the frame was cut
/// short, thanks to `MSG_TRUNC`), its `tpacket_auxdata` status to
/// `status[i]` (0 unless [`want_aux_status`] was set). Returns how many
/// were read (0 when the queue is empty); at most [`MAX_RECV`],
/// `lens.len()`, `status.len()` and `buf.len() / slot`.
pub fn recv_frames(
    fd: RawFd,
    buf: &mut [u8],
    slot: usize,
    lens: &mut [usize],
    status: &mut [u32],
) -> io::Result<usize> {
    let n = MAX_RECV.min(lens.len()).min(status.len()).min(buf.len().checked_div(slot).unwrap_or(0));
    if n == 0 {
        return Ok(0);
    }
    let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_RECV];
    for (iov, c) in iovs.iter_mut().zip(buf.chunks_exact_mut(slot).take(n)) {
        *iov = libc::iovec { iov_base: c.as_mut_ptr().cast(), iov_len: slot };
    }
    let mut control = [[0u64; AUX_SPACE]; MAX_RECV];
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut msgs: [libc::mmsghdr; MAX_RECV] = unsafe { mem::zeroed() };
    for ((m, iov), c) in msgs.iter_mut().zip(iovs.iter_mut()).zip(control.iter_mut()).take(n) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_control = c.as_mut_ptr().cast();
        m.msg_hdr.msg_controllen = AUX_SPACE * size_of::<u64>();
    }
    // SAFETY: each header points at one iovec of `slot` bytes inside `buf`
    // and at its own AUX_SPACE words of `control` (both valid for writes
    // while borrowed here); no addresses are asked for; `n` headers exist.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock => Ok(0),
            _ => Err(e),
        };
    }
    let r = r as usize;
    for ((len, st), m) in lens.iter_mut().zip(status.iter_mut()).zip(&msgs[..r]) {
        *len = m.msg_len as usize;
        *st = aux_status(&m.msg_hdr);
    }
    Ok(r)
}

/// The `tp_status` of the `PACKET_AUXDATA` message `hdr` carries (0 without one).
fn aux_status(hdr: &libc::msghdr) -> u32 {
    // SAFETY: `hdr` is a header recvmmsg filled: its control pointer and
    // length describe the buffer the kernel wrote (length 0: none), which
    // the CMSG macros walk within those bounds; the data of a
    // PACKET_AUXDATA message is a tpacket_auxdata, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            let aux_len = libc::CMSG_LEN(size_of::<TpacketAuxdata>() as u32) as usize;
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA && (*c).cmsg_len >= aux_len {
                let aux = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<TpacketAuxdata>());
                return aux.tp_status;
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    0
}

/// The most frames one `sendmmsg` of [`send_frames`] hands the kernel:
/// their headers and descriptors live on the stack, not in vectors
/// allocated per call (the live driver sends single frames too).
const MAX_SEND: usize = 64;

/// Sends `frames` in order on a bound packet socket with as few
/// `sendmmsg` calls as the socket allows (up to [`MAX_SEND`] frames each).
/// When its send queue is full, waits up to `timeout_ms` for room once per
/// frame that hits it; a frame the kernel refuses is reported to `failed`
/// with its index and skipped.
pub fn send_frames<'a>(
    fd: RawFd,
    mut frames: impl Iterator<Item = &'a [u8]>,
    timeout_ms: i32,
    failed: &mut dyn FnMut(usize, io::Error),
) {
    let mut first = 0;
    loop {
        let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_SEND];
        let mut n = 0;
        // `zip` asks `iovs` first, so no frame is taken past the last slot.
        for (iov, f) in iovs.iter_mut().zip(&mut frames) {
            *iov = libc::iovec { iov_base: f.as_ptr().cast_mut().cast(), iov_len: f.len() };
            n += 1;
        }
        if n == 0 {
            return;
        }
        // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
        let mut msgs: [libc::mmsghdr; MAX_SEND] = unsafe { mem::zeroed() };
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()).take(n) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        send_some(fd, &mut msgs[..n], timeout_ms, &mut |i, e| failed(first + i, e));
        first += n;
        if n < MAX_SEND {
            return;
        }
    }
}

/// [`send_frames`] for the headers `msgs`, each describing one frame:
/// sends them all, waiting and skipping as it says (`failed` gets the
/// index in `msgs`).
fn send_some(fd: RawFd, msgs: &mut [libc::mmsghdr], timeout_ms: i32, failed: &mut dyn FnMut(usize, io::Error)) {
    let (mut at, mut waited) = (0, false);
    while at < msgs.len() {
        let rest = &mut msgs[at..];
        // SAFETY: each header points at one iovec describing a frame the
        // caller's iterator lent for `'a`, past this call, so valid for
        // reads (the kernel only reads them); `rest.len()` headers exist.
        let r = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, libc::MSG_DONTWAIT) };
        if r > 0 {
            at += r as usize;
            waited = false;
            continue;
        }
        let e = if r == 0 { io::Error::from(io::ErrorKind::WouldBlock) } else { io::Error::last_os_error() };
        if e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if e.kind() == io::ErrorKind::WouldBlock && !waited {
            waited = true;
            let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            continue;
        }
        failed(at, e);
        at += 1;
        waited = false;
    }
}

/// Frames the kernel dropped on `fd` since the last call because its
/// receive queue was full (`PACKET_STATISTICS`, which resets on read).
pub fn take_kernel_drops(fd: RawFd) -> io::Result<u64> {
    let mut stats = TpacketStats::default();
    let mut len = mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: `stats` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_PACKET, PACKET_STATISTICS, (&mut stats as *mut TpacketStats).cast(), &mut len)
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(stats.tp_drops))
}

/// `SOL_PACKET` option (`linux/if_packet.h`): join a `packet_mreq` group.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
/// `packet_mreq.mr_type`: the interface's promiscuous mode.
const PACKET_MR_PROMISC: u16 = 1;

/// `struct packet_mreq` (`linux/if_packet.h`).
#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: u16,
    mr_alen: u16,
    mr_address: [u8; 8],
}

/// The index of the interface named `name` in this network namespace, or
/// `None` when there is none (`ENODEV`, or a name no interface can have).
pub fn interface_index(name: &str) -> io::Result<Option<u32>> {
    let Ok(c) = std::ffi::CString::new(name) else { return Ok(None) };
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    let ix = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if ix != 0 {
        return Ok(Some(ix));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => Ok(None),
        _ => Err(e),
    }
}

/// The interface index packet socket `fd` is bound to: the index it was
/// bound with, 0 if never bound, and -1 once the kernel unbound it because
/// the interface was deleted (or moved to another network namespace).
pub fn bound_index(fd: RawFd) -> io::Result<i32> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sll` and `len` are valid for writes of the sizes given.
    if unsafe { libc::getsockname(fd, (&raw mut sll).cast(), &raw mut len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sll.sll_ifindex)
}

/// Binds packet socket `fd` (again) to interface `ifindex` for every
/// protocol and puts the interface in promiscuous mode for it, as pnet does
/// when it opens the channel. Socket options set before (buffer size,
/// ignored outgoing frames, auxiliary data) stay. The error a bind to an
/// interface that is down leaves pending (`ENETDOWN`) is taken, so the
/// next receive does not report a fresh link down.
pub fn bind_packet(fd: RawFd, ifindex: u32) -> io::Result<()> {
    let index = libc::c_int::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = index;
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sll` is a valid sockaddr_ll of `len` bytes.
    if unsafe { libc::bind(fd, (&raw const sll).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mreq = PacketMreq { mr_ifindex: index, mr_type: PACKET_MR_PROMISC, mr_alen: 0, mr_address: [0; 8] };
    setsockopt(fd, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)?;
    // Best effort: an error that cannot be read is reported by the next receive.
    let _ = take_socket_error(fd);
    Ok(())
}

/// Takes the error pending on socket `fd` (`SO_ERROR`, which reading
/// clears): `Some(errno)`, or `None` when there is none. A packet socket
/// bound to an interface that is down has `ENETDOWN` pending; taking it
/// keeps the next receive from reporting it again.
pub fn take_socket_error(fd: RawFd) -> io::Result<Option<i32>> {
    let mut err: libc::c_int = 0;
    let mut elen = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` has room for the c_int SO_ERROR writes.
    if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &raw mut elen) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((err != 0).then_some(err))
}

/// `SIOCETHTOOL` commands (`linux/ethtool.h`): the sizes of string sets,
/// a string set, and the device's feature bits.
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GFEATURES: u32 = 0x3a;
/// The string set naming the feature bits (`rx-gro`, `rx-gro-hw`, ...).
const ETH_SS_FEATURES: u32 = 4;
/// Bytes per string of a string set (NUL-padded).
const ETH_GSTRING_LEN: usize = 32;

/// The receive offloads that merge frames before a packet socket reads
/// them: (ethtool feature name, as `ethtool -k` reads it; `ethtool -K`
/// name). Hardware GRO (`rx-gro-hw`) is a feature of its own: `gro off`
/// does not always turn it off.
pub const MERGING_OFFLOADS: [(&str, &str); 3] = [("rx-gro", "gro"), ("rx-lro", "lro"), ("rx-gro-hw", "rx-gro-hw")];

/// The merging receive offloads ([`MERGING_OFFLOADS`]) that are active
/// among `features` (feature name, active), by their `ethtool -K` names,
/// in the order of [`MERGING_OFFLOADS`].
pub fn merging_offloads_in<'a>(features: impl IntoIterator<Item = (&'a str, bool)>) -> Vec<&'static str> {
    let active: Vec<&str> = features.into_iter().filter(|&(_, on)| on).map(|(name, _)| name).collect();
    MERGING_OFFLOADS.iter().filter(|(name, _)| active.contains(name)).map(|&(_, cli)| cli).collect()
}

/// The receive offloads that merge frames and are on for interface `name`,
/// by their `ethtool -K` names (`gro`, `lro`, `rx-gro-hw`).
pub fn merging_offloads(name: &str) -> io::Result<Vec<&'static str>> {
    let features = interface_features(name)?;
    Ok(merging_offloads_in(features.iter().map(|(n, on)| (n.as_str(), *on))))
}

/// Every feature of interface `name` as `ethtool -k` reads it: its name in
/// the kernel's feature string set and whether it is active
/// (`ETHTOOL_GSSET_INFO`, `ETHTOOL_GSTRINGS`, `ETHTOOL_GFEATURES`).
pub fn interface_features(name: &str) -> io::Result<Vec<(String, bool)>> {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Each request is a buffer of u32 words (the kernel copies it in and
    // out byte-wise, so no stricter alignment is needed) that the kernel
    // reads the command from and writes the answer into.
    let ethtool = |buf: &mut [u32]| -> io::Result<()> {
        // SAFETY: ifreq is plain data (a name and a union); all-zero is valid.
        let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
        if name.is_empty() || name.len() >= ifr.ifr_name.len() || name.contains('\0') {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
        // SAFETY: SIOCETHTOOL reads the command at the start of `buf` and
        // writes an answer no larger than the sizes the request gives,
        // which `buf` holds (see each request below); `buf` lives across
        // the call.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &raw mut ifr) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // struct ethtool_sset_info { u32 cmd; u32 reserved; u64 sset_mask; u32 data[]; }:
    // one data word for the one set asked for.
    let mask = (1u64 << ETH_SS_FEATURES).to_ne_bytes();
    let half = |h: &[u8]| u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
    let mut info = [ETHTOOL_GSSET_INFO, 0, half(&mask[..4]), half(&mask[4..]), 0];
    ethtool(&mut info)?;
    let got = [info[2].to_ne_bytes(), info[3].to_ne_bytes()].concat();
    if got != mask {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    let count = info[4] as usize;
    if count > 4096 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // struct ethtool_gstrings { u32 cmd; u32 string_set; u32 len; u8 data[len * 32]; }
    let mut strings = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
    strings[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count as u32]);
    ethtool(&mut strings)?;
    let bytes: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    let names = bytes
        .chunks_exact(ETH_GSTRING_LEN)
        .map(|s| String::from_utf8_lossy(s.split(|&b| b == 0).next().unwrap_or_default()).into_owned());
    // struct ethtool_gfeatures { u32 cmd; u32 size; struct { u32 available,
    // requested, active, never_changed; } features[size]; }
    let blocks = count.div_ceil(32);
    let mut features = vec![0u32; 2 + 4 * blocks];
    features[..2].copy_from_slice(&[ETHTOOL_GFEATURES, blocks as u32]);
    ethtool(&mut features)?;
    let active = |bit: usize| features[2 + 4 * (bit / 32) + 2] & (1 << (bit % 32)) != 0;
    Ok(names.enumerate().map(|(bit, n)| (n, active(bit))).collect())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the live packets' `std.timestamp`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is valid for writes; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// CPU time the whole process has used so far: (user, system) seconds.
pub fn cpu_seconds() -> (f64, f64) {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: valid pointer; RUSAGE_SELF always exists.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Waits up to `timeout_ms` for `fd` to be readable; `Ok(false)` on timeout
/// or an interrupted wait.
pub fn wait_readable(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    Ok(r > 0)
}

/// SIGINT and SIGTERM blocked in the calling thread (and so in every thread
/// it spawns afterwards) until dropped, when the previous mask comes back.
/// A blocked signal stays pending until [`wait_stop_signal`] takes it: no
/// asynchronous handler runs, so no code has to be async-signal-safe.
pub struct StopSignals {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

impl StopSignals {
    /// Blocks SIGINT and SIGTERM in the calling thread.
    pub fn block() -> io::Result<StopSignals> {
        // SAFETY: sigset_t is plain data; the sig* calls initialise it.
        let mut set: libc::sigset_t = unsafe { mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { mem::zeroed() };
        // SAFETY: valid pointers to local sigsets.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
        }
        // SAFETY: valid pointers; pthread_sigmask returns an errno value.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        Ok(StopSignals { set, old })
    }

    /// A copy of the blocked set, for [`wait_stop_signal`] in another thread.
    pub fn set(&self) -> SignalSet {
        SignalSet(self.set)
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// A signal set that can move to another thread.
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

// SAFETY: sigset_t is plain data (a bit array) with no pointers.
unsafe impl Send for SignalSet {}

/// Waits up to `timeout_ms` for one of `set`'s signals (which must be
/// blocked in every thread) and takes it: `Ok(Some(signo))`, or `Ok(None)`
/// on timeout.
pub fn wait_stop_signal(set: &SignalSet, timeout_ms: u32) -> io::Result<Option<i32>> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::from(timeout_ms / 1000),
        tv_nsec: libc::c_long::from((timeout_ms % 1000) as i32) * 1_000_000,
    };
    // SAFETY: valid pointers; a null siginfo is allowed.
    let r = unsafe { libc::sigtimedwait(&set.0, std::ptr::null_mut(), &ts) };
    if r >= 0 {
        return Ok(Some(r));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
        _ => Err(e),
    }
}

/// The conventional name of a stop signal, for the report.
pub fn signal_name(signo: i32) -> String {
    match signo {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// Whether the process may open packet sockets (effective uid 0; a process
/// with only CAP_NET_RAW is not detected and simply tries).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn sockaddr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    }
}

/// Connects to `remote` from address `local` (any port), giving up after
/// `timeout`, like `TcpStream::connect_timeout` with a bind first.
pub fn connect_from(local: Ipv4Addr, remote: SocketAddrV4, timeout: Duration) -> io::Result<TcpStream> {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let l = sockaddr(local, 0);
    // SAFETY: `l` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::bind(sock.as_raw_fd(), (&raw const l).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = sockaddr(*remote.ip(), remote.port());
    // SAFETY: `r` is a valid sockaddr_in of `len` bytes.
    if unsafe { libc::connect(sock.as_raw_fd(), (&raw const r).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connection timed out"));
            }
            let mut pfd = libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n > 0 {
                break;
            }
        }
        let mut err: libc::c_int = 0;
        let mut elen = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` has room for the c_int SO_ERROR writes.
        let rc = unsafe {
            libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &raw mut elen)
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        if err != 0 {
            return Err(io::Error::from_raw_os_error(err));
        }
    }
    let stream = TcpStream::from(sock);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Sends SIGKILL to the process group `pgid` (a misc command started as
/// the leader of its own group, so its children die with it).
pub fn kill_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else { return };
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals that group only.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VmFlags` line of the mapping in `/proc/self/smaps` that holds `addr`.
    pub(super) fn vm_flags_at(addr: usize) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some(flags.to_string());
                }
            }
        }
        None
    }

    /// Both ends of a Unix datagram socket pair, non-blocking: the same
    /// `sendmmsg`/`recvmmsg` a packet socket takes, without an interface.
    fn datagram_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0, fds.as_mut_ptr()) };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        // SAFETY: socketpair succeeded, so both are open descriptors we own.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    /// More frames than one `sendmmsg` takes ([`MAX_SEND`]) and than one
    /// [`recv_frames`] reads ([`MAX_RECV`]) arrive whole and in order, and
    /// a frame longer than its receive slot reports its real length.
    #[test]
    fn frames_go_out_and_come_in_in_batches_of_any_size() {
        let (a, b) = datagram_pair();
        let frames: Vec<Vec<u8>> = (0..150u32).map(|i| vec![i as u8; 20 + (i as usize * 7) % 90]).collect();
        let mut refused = Vec::new();
        send_frames(a.as_raw_fd(), frames.iter().map(|f| f.as_slice()), 100, &mut |i, e| refused.push((i, e.kind())));
        assert!(refused.is_empty(), "{refused:?}");
        let slot = 64;
        let mut buf = vec![0u8; 100 * slot];
        let (mut lens, mut status) = ([0usize; 100], [0u32; 100]);
        let mut got = Vec::new();
        loop {
            let n = recv_frames(b.as_raw_fd(), &mut buf, slot, &mut lens, &mut status).expect("recvmmsg");
            if n == 0 {
                break;
            }
            assert!(n <= MAX_RECV);
            for (chunk, &len) in buf.chunks_exact(slot).zip(&lens[..n]) {
                got.push((len, chunk[..len.min(slot)].to_vec()));
            }
        }
        assert_eq!(got.len(), frames.len());
        for (f, (len, data)) in frames.iter().zip(&got) {
            assert_eq!(*len, f.len(), "the real length, also when cut");
            assert_eq!(data[..], f[..f.len().min(slot)]);
        }
    }

    #[test]
    fn huge_page_advice_marks_the_mapping_and_keeps_the_contents() {
        let mut v: Vec<u32> = Vec::with_capacity(1 << 20); // 4 MiB
        v.extend(0..1000);
        let advised = advise_huge_pages(&v);
        assert_eq!(v.iter().map(|&x| u64::from(x)).sum::<u64>(), 999 * 1000 / 2);
        // Kernels without THP refuse the advice; then there is nothing to see.
        if advised {
            let middle = v.as_ptr() as usize + (2 << 20);
            let flags = vm_flags_at(middle).expect("the vector's mapping is in smaps");
            assert!(flags.split_whitespace().any(|f| f == "hg"), "no hg in VmFlags:{flags}");
        }
        // An allocation smaller than a page holds no whole page to advise.
        assert!(!advise_huge_pages(&Vec::<u8>::with_capacity(16)));
    }

    #[test]
    fn monotonic_clock_does_not_go_back() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn wait_readable_times_out_then_sees_data() {
        use std::io::Write;
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!wait_readable(b.as_raw_fd(), 0).unwrap());
        a.write_all(b"x").unwrap();
        assert!(wait_readable(b.as_raw_fd(), 1000).unwrap());
    }

    #[test]
    fn outgoing_filter_installs_when_root() {
        // Packet sockets need CAP_NET_RAW; without it there is nothing to test.
        let Ok(fd) = packet_socket() else { return };
        assert!(ignore_outgoing(&fd).is_ok());
        attach_outgoing_bpf(&fd).unwrap();
        assert_eq!(take_kernel_drops(fd.as_raw_fd()).unwrap(), 0);
    }

    /// The features of `lo` read as `ethtool -k` reads them: the kernel's
    /// names, including the three merging offloads, and (where `ethtool`
    /// is installed) the same state for each of them as `ethtool -k lo`.
    #[test]
    fn interface_features_read_like_ethtool() {
        let features = interface_features("lo").expect("lo's features");
        for (name, _) in MERGING_OFFLOADS {
            assert!(features.iter().any(|(n, _)| n == name), "no {name} in {features:?}");
        }
        let Ok(out) = std::process::Command::new("ethtool").args(["-k", "lo"]).output() else { return };
        let text = String::from_utf8_lossy(&out.stdout);
        // ethtool shows rx-gro and rx-lro by their long names.
        for (ours, shown) in
            [("rx-gro", "generic-receive-offload"), ("rx-lro", "large-receive-offload"), ("rx-gro-hw", "rx-gro-hw")]
        {
            let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{shown}:"))).unwrap_or_default();
            let on = features.iter().find(|(n, _)| n == ours).map(|(_, on)| *on);
            assert_eq!(on, Some(line.contains(": on")), "{ours} vs `{line}`");
        }
        assert!(interface_features("p4lt-nonexist").is_err());
    }

    #[test]
    fn cpu_time_is_counted() {
        let (user, system) = cpu_seconds();
        assert!(user > 0.0 || system > 0.0);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
    }
}
