//! RTP port leases from `rtp.port_range`: even ports for RTP and the odd port
//! above for RTCP (RFC 3550 §11), least recently used first, each held by bound
//! UDP sockets for the call's life.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The pool of free even ports.
#[derive(Debug)]
pub(crate) struct RtpPorts {
    bind_ip: IpAddr,
    free: Mutex<VecDeque<u16>>,
}

/// A bound RTP socket; its port goes back to the pool on drop.
#[derive(Debug)]
pub(crate) struct RtpLease {
    socket: Option<std::net::UdpSocket>,
    rtcp: Option<std::net::UdpSocket>,
    pub(crate) port: u16,
    pool: Arc<RtpPorts>,
}

impl RtpPorts {
    pub(crate) fn new(bind_ip: IpAddr, ports: impl Iterator<Item = u16>) -> Arc<Self> {
        Arc::new(Self {
            bind_ip,
            free: Mutex::new(ports.collect()),
        })
    }

    /// Binds the next free port; `None` when every port is taken.
    /// The address the RTP sockets are bound to.
    pub(crate) fn bind_ip(&self) -> IpAddr {
        self.bind_ip
    }

    pub(crate) fn lease(self: &Arc<Self>) -> Option<RtpLease> {
        // The lock is never held across a panic-prone call, so poisoning cannot happen.
        let mut free = self.free.lock().expect("rtp port pool lock");
        for _ in 0..free.len() {
            let port = free.pop_front()?;
            let rtp = std::net::UdpSocket::bind(SocketAddr::new(self.bind_ip, port));
            let rtcp =
                std::net::UdpSocket::bind(SocketAddr::new(self.bind_ip, port.wrapping_add(1)));
            match (rtp, rtcp) {
                (Ok(socket), Ok(rtcp)) => {
                    let _ = socket.set_nonblocking(true);
                    let _ = rtcp.set_nonblocking(true);
                    return Some(RtpLease {
                        socket: Some(socket),
                        rtcp: Some(rtcp),
                        port,
                        pool: self.clone(),
                    });
                }
                // In use by someone else: try it again later.
                _ => free.push_back(port),
            }
        }
        None
    }

    /// Ports free now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.free.lock().expect("rtp port pool lock").len()
    }
}

impl RtpLease {
    /// Moves the RTP and RTCP sockets out (no extra descriptors, unlike
    /// `try_clone`). The port goes back to the pool when the lease drops; a port
    /// whose sockets still live cannot be bound again, so it is never handed out twice.
    pub(crate) fn take_sockets(&mut self) -> Option<(std::net::UdpSocket, std::net::UdpSocket)> {
        Some((self.socket.take()?, self.rtcp.take()?))
    }
}

impl Drop for RtpLease {
    fn drop(&mut self) {
        self.pool
            .free
            .lock()
            .expect("rtp port pool lock")
            .push_back(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_even_ports_and_returns_them() {
        let pool = RtpPorts::new("127.0.0.1".parse().unwrap(), (41000..41010).step_by(2));
        let a = pool.lease().unwrap();
        let b = pool.lease().unwrap();
        assert_ne!(a.port, b.port);
        assert_eq!(a.port % 2, 0);
        assert_eq!(pool.available(), 3);
        drop(a);
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn exhausted_pool_gives_none() {
        let pool = RtpPorts::new("127.0.0.1".parse().unwrap(), [41100u16].into_iter());
        let _a = pool.lease().unwrap();
        assert!(pool.lease().is_none());
    }
}
