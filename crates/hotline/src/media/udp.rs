//! The socket work of a media shard, in one place: which sockets are readable
//! (one level-triggered epoll set per shard) and every datagram waiting on a
//! socket in one `recvmmsg` call.
//!
//! Every call has its own RTP port (its SDP names it), so a shard's receive
//! work is one system call per readable socket per tick: `recvmmsg` takes all
//! that waits (usually one packet, two after a late tick) without the extra
//! `EAGAIN` call a `recv_from` loop ends on. Sends stay one `send_to` per
//! packet: `sendmmsg` batches datagrams of one socket, and a call's socket has
//! one packet to send per tick. Where `recvmmsg` is refused (a kernel without
//! it) the socket falls back to `recv_from` until `WouldBlock`.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

/// Datagrams taken from one socket in one call.
pub(crate) const BATCH: usize = 8;
/// The largest datagram kept (RTP of a 60 ms G.711 frame is 492 bytes).
pub(crate) const DATAGRAM: usize = 1500;

/// The readiness of a shard's sockets.
#[derive(Debug)]
pub(crate) struct Poller {
    epoll: Epoll,
    /// Room for an event per watched socket: one `epoll_wait` reports them all.
    events: Vec<EpollEvent>,
    watched: usize,
}

impl Poller {
    pub(crate) fn new(capacity: usize) -> io::Result<Self> {
        Ok(Self {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(io::Error::from)?,
            events: vec![EpollEvent::empty(); capacity.max(16)],
            watched: 0,
        })
    }

    /// Watches `socket` for input, reported with `token`.
    pub(crate) fn add(&mut self, socket: &UdpSocket, token: u64) -> io::Result<()> {
        self.epoll
            .add(socket.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(io::Error::from)?;
        self.watched += 1;
        if self.events.len() < self.watched {
            // Grown by half: not once per call.
            let len = self.watched + self.watched / 2;
            self.events.resize(len, EpollEvent::empty());
        }
        Ok(())
    }

    /// Stops watching `socket` (closing it would too).
    pub(crate) fn remove(&mut self, socket: &UdpSocket) {
        if self.epoll.delete(socket.as_fd()).is_ok() {
            self.watched = self.watched.saturating_sub(1);
        }
    }

    /// The tokens of the sockets readable now, without waiting: `f` for each.
    ///
    /// One `epoll_wait` with room for every watched socket. (Level-triggered: asking
    /// again before reading would report the same sockets again, so a loop "while the
    /// list is full" never ends once more sockets are ready than the list holds.)
    pub(crate) fn ready(&mut self, mut f: impl FnMut(u64)) -> io::Result<usize> {
        let n = loop {
            match self.epoll.wait(&mut self.events, EpollTimeout::ZERO) {
                Ok(n) => break n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        };
        for ev in &self.events[..n] {
            f(ev.data());
        }
        Ok(n)
    }
}

/// Buffers for one `recvmmsg`, made once per shard.
pub(crate) struct Receiver {
    headers: MultiHeaders<SockaddrStorage>,
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    /// `recvmmsg` was refused once: use `recv_from`.
    plain: bool,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("plain", &self.plain)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub(crate) fn new() -> Self {
        Self {
            headers: MultiHeaders::preallocate(BATCH, None),
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
            plain: false,
        }
    }

    /// Every datagram waiting on `socket` (non-blocking), up to [`BATCH`] per
    /// system call and `limit` in all; `f(from, bytes)` for each. Returns how many.
    pub(crate) fn drain(
        &mut self,
        socket: &UdpSocket,
        limit: usize,
        mut f: impl FnMut(SocketAddr, &[u8]),
    ) -> usize {
        let mut total = 0;
        while total < limit {
            let got = if self.plain {
                self.recv_plain(socket, &mut f)
            } else {
                self.recv_batch(socket, &mut f)
            };
            total += got;
            if got < BATCH {
                break;
            }
        }
        total
    }

    fn recv_batch(&mut self, socket: &UdpSocket, f: &mut impl FnMut(SocketAddr, &[u8])) -> usize {
        let mut meta = [(None::<SocketAddr>, 0usize); BATCH];
        let got = {
            let mut iovs = self.bufs.each_mut().map(|b| [io::IoSliceMut::new(b)]);
            match recvmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(results) => {
                    let mut n = 0;
                    for (slot, msg) in meta.iter_mut().zip(results) {
                        *slot = (msg.address.as_ref().and_then(to_std), msg.bytes);
                        n += 1;
                    }
                    n
                }
                Err(Errno::EAGAIN | Errno::EINTR) => 0,
                Err(Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                    self.plain = true;
                    0
                }
                // ECONNREFUSED (an ICMP error for an earlier send) and the like: nothing to read now.
                Err(_) => 0,
            }
        };
        for (i, (from, len)) in meta[..got].iter().enumerate() {
            if let Some(from) = from {
                f(*from, &self.bufs[i][..(*len).min(DATAGRAM)]);
            }
        }
        got
    }

    fn recv_plain(&mut self, socket: &UdpSocket, f: &mut impl FnMut(SocketAddr, &[u8])) -> usize {
        let mut n = 0;
        while n < BATCH {
            match socket.recv_from(&mut self.bufs[0]) {
                Ok((len, from)) => {
                    f(from, &self.bufs[0][..len]);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        n
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    if let Some(v6) = a.as_sockaddr_in6() {
        return Some(SocketAddr::V6(SocketAddrV6::from(*v6)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_every_waiting_datagram_with_its_source() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..(BATCH + 3) as u8 {
            tx.send_to(&[i; 12], rx.local_addr().unwrap()).unwrap();
        }
        let mut poller = Poller::new(4).unwrap();
        poller.add(&rx, 7).unwrap();
        let mut tokens = Vec::new();
        // Loopback delivers within the send call: the socket is readable now.
        poller.ready(|t| tokens.push(t)).unwrap();
        assert_eq!(tokens, vec![7]);
        let mut r = Receiver::new();
        let mut got = Vec::new();
        let n = r.drain(&rx, 64, |from, bytes| got.push((from, bytes.to_vec())));
        assert_eq!(n, BATCH + 3);
        assert!(
            got.iter()
                .all(|(from, _)| *from == tx.local_addr().unwrap())
        );
        assert_eq!(got[10].1, vec![10; 12]);
        // Nothing left: not readable, and a drain takes nothing.
        tokens.clear();
        poller.ready(|t| tokens.push(t)).unwrap();
        assert!(tokens.is_empty());
        assert_eq!(r.drain(&rx, 64, |_, _| {}), 0);
    }

    #[test]
    fn more_ready_sockets_than_its_first_room_are_all_reported_once() {
        let mut poller = Poller::new(16).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sockets: Vec<UdpSocket> = (0..100)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, s) in sockets.iter().enumerate() {
            poller.add(s, i as u64).unwrap();
            tx.send_to(&[1], s.local_addr().unwrap()).unwrap();
        }
        let mut tokens = Vec::new();
        assert_eq!(poller.ready(|t| tokens.push(t)).unwrap(), 100);
        tokens.sort_unstable();
        assert_eq!(tokens, (0..100).collect::<Vec<u64>>());
        for s in &sockets[..50] {
            poller.remove(s);
        }
        tokens.clear();
        assert_eq!(poller.ready(|t| tokens.push(t)).unwrap(), 50);
        assert!(tokens.iter().all(|&t| t >= 50));
    }

    #[test]
    fn the_limit_bounds_one_drain() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..20 {
            tx.send_to(&[1; 4], rx.local_addr().unwrap()).unwrap();
        }
        let mut r = Receiver::new();
        assert_eq!(r.drain(&rx, BATCH, |_, _| {}), BATCH);
        assert_eq!(r.drain(&rx, 64, |_, _| {}), 20 - BATCH);
    }
}
