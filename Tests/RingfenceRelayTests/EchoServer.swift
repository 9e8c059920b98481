import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// A blocking echo server on 127.0.0.1, one connection at a time, on a Dispatch worker: the
/// relay's upstream in these tests.
final class EchoServer: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        port = bindLoopback(fd)
        listen(fd, 16)
        DispatchQueue.global().async {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else {
                    Glibc.close(fd)
                    return
                }
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = recv(client, &buffer, buffer.count, 0)
                    guard count > 0 else { break }
                    _ = send(client, buffer, count, Int32(MSG_NOSIGNAL))
                }
                Glibc.close(client)
            }
        }
    }

    /// Stops accepting: the worker's accept fails and the worker closes the socket, so that it
    /// never accepts on a descriptor number reused by then.
    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
    }
}

/// Binds `fd` to 127.0.0.1 on a port the kernel picks, and returns the port.
func bindLoopback(_ fd: Int32) -> UInt16 {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

/// A port nothing listens on right now.
func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    return bindLoopback(fd)
}

/// A blocking client of 127.0.0.1:`port`, with a 2 s receive timeout.
func connectLoopback(_ port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var remote = sockaddr_in()
    remote.sin_family = sa_family_t(AF_INET)
    remote.sin_addr.s_addr = inet_addr("127.0.0.1")
    remote.sin_port = port.bigEndian
    _ = withUnsafePointer(to: &remote) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return fd
}
