import Dispatch
import RingfenceSockets
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP listener on 127.0.0.1 at a port the kernel picks, standing in for a service
/// whose clients speak first (TCPStore, gloo) or one that speaks something other than ZMTP.
enum PlainListener {
    struct Failure: Error {}

    static func open() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Bool in
                bind(fd, raw, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw Failure()
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }
}

/// Accepts one connection on another thread (after `acceptAfter`), writes `banner`, then counts
/// the bytes the client sends until it closes (at most 2 seconds).
final class BannerServer: Sendable {
    private let received = Mutex<Int>(-1)
    private let done = DispatchSemaphore(value: 0)

    init(_ listener: Int32, banner: [UInt8], acceptAfter: Duration = .zero) {
        DispatchQueue.global().async { [self] in
            if acceptAfter > .zero { usleep(UInt32(acceptAfter.nanoseconds / 1000)) }
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                done.signal()
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if !banner.isEmpty {
                _ = banner.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            var total = 0
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let count = read(client, &buffer, buffer.count)
                if count <= 0 { break }
                total += count
            }
            close(client)
            received.withLock { $0 = total }
            done.signal()
        }
    }

    /// The bytes the client sent, once it closed; -1 if nothing was accepted.
    func wait() -> Int {
        _ = done.wait(timeout: .now() + 3)
        return received.withLock { $0 }
    }
}
