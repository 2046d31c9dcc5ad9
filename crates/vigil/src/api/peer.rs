//! Who is calling over TCP. Whoever reaches the API can read every event
//! (what users ran, with arguments) and switch enforcement off, so a TCP
//! caller must be root on this host, as a `unix://` socket (mode 0600)
//! already ensures, unless it presented a client certificate that the TLS
//! handshake verified against `--server-tls-client-ca-files` (mTLS): then
//! the certificate is the credential, whatever host or user it comes from.
//!
//! A loopback caller's user is the owner of its end of the connection,
//! which the kernel lists in /proc/net/tcp and tcp6 (the table identd reads).
use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use tonic::{service::Interceptor, Request, Status};

/// The tonic interceptor: lets callers with a verified client certificate
/// through when the server demands one, root callers on this host otherwise.
#[derive(Clone, Copy)]
pub struct Admission {
    pub verifies_clients: bool,
}

impl Interceptor for Admission {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if !self.verifies_clients {
            return require_local_root(request);
        }
        // The handshake already refused clients without a certificate signed
        // by a client CA; a request without one did not come through it.
        match request.peer_certs() {
            Some(certs) if !certs.is_empty() => Ok(request),
            _ => Err(Status::unauthenticated(
                "the vigil API requires a client certificate (mTLS)",
            )),
        }
    }
}

fn require_local_root(request: Request<()>) -> Result<Request<()>, Status> {
    // Unix sockets carry no TCP addresses; their file mode admits root only.
    let (Some(local), Some(remote)) = (request.local_addr(), request.remote_addr()) else {
        return Ok(request);
    };
    match tcp_peer_uid(local, remote) {
        Some(0) => Ok(request),
        Some(uid) => Err(Status::permission_denied(format!(
            "the vigil API serves root only; the caller {remote} runs as uid {uid}"
        ))),
        None if !remote.ip().to_canonical().is_loopback() => Err(Status::permission_denied(
            format!("the vigil API serves only this host unless it verifies client certificates (--server-tls-client-ca-files); {remote} is remote: use mTLS, an SSH tunnel or a unix:// socket"),
        )),
        None => Err(Status::permission_denied(format!(
            "cannot tell which user owns the connection from {remote}"
        ))),
    }
}

/// The uid owning the caller's end of the connection `local` ← `remote`:
/// the socket whose own address is `remote` and whose peer is `local`.
fn tcp_peer_uid(local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let own = parse_hex_addr(fields.get(1)?)?;
                let peer = parse_hex_addr(fields.get(2)?)?;
                (same(own, remote) && same(peer, local)).then(|| fields.get(7)?.parse().ok())?
            })
        })
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
}

/// `0100007F:D431` (IPv4) or 32 hex digits (IPv6) and a port: each 32-bit
/// word of the address is printed in the host's byte order.
fn parse_hex_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_addresses() {
        assert_eq!(
            parse_hex_addr("0100007F:D431"),
            Some("127.0.0.1:54321".parse().unwrap())
        );
        assert_eq!(
            parse_hex_addr("00000000000000000000000001000000:D431"),
            Some("[::1]:54321".parse().unwrap())
        );
        assert_eq!(
            parse_hex_addr("0000000000000000FFFF00000100007F:0050"),
            Some("[::ffff:127.0.0.1]:80".parse().unwrap())
        );
        assert_eq!(parse_hex_addr("zz:1"), None);
    }

    #[test]
    fn own_connection_is_found_with_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let uid = tcp_peer_uid(
            server_side.local_addr().unwrap(),
            server_side.peer_addr().unwrap(),
        );
        // SAFETY: getuid has no preconditions.
        assert_eq!(uid, Some(unsafe { libc::getuid() }));
        drop(client);
    }
}
