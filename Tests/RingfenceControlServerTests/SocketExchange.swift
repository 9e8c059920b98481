import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// The client side of the servers' tests, over a socket already connected: sends `bytes`
/// (stopping early if the server stops reading a request over its cap), half-closes if asked,
/// then reads the reply to the end, waiting at most 5 s per read.
func exchange(on fd: Int32, _ bytes: [UInt8], halfClose: Bool) -> String {
    Posix.setReceiveTimeout(fd, .seconds(5))
    var offset = 0
    while offset < bytes.count {
        let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent <= 0 { break }
        offset += sent
    }
    if halfClose { shutdown(fd, Int32(SHUT_WR)) }
    var reply: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        reply += chunk[..<count]
    }
    return String(decoding: reply, as: UTF8.self)
}
