import Dispatch
import RingfenceTestSupport

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
        port = LoopbackClient.bind(fd)
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
