//! The health monitor's few system calls std lacks: a TCP connect from a
//! chosen source address (`bindto`) with a timeout, and killing a misc
//! command's process group. All `unsafe` of the monitor is here.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

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
