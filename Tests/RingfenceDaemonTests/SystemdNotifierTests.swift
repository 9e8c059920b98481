import RingfenceIO
import Testing

@testable import RingfenceDaemon

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify against real Unix datagram sockets bound by the test.
@Suite struct SystemdNotifierTests {
    /// Binds a datagram socket at `path` (a leading `@`: abstract) and returns it.
    static func bind(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        var length = MemoryLayout<sockaddr_un>.size
        if path.hasPrefix("@") {
            withUnsafeMutableBytes(of: &address.sun_path) { $0[0] = 0 }
            length = MemoryLayout<sa_family_t>.size + bytes.count
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(length)) }
        }
        try #require(bound == 0, "bind \(path): errno \(errno)")
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : "<nothing: errno \(errno)>"
    }

    @Test func sendsReadyToAFilesystemSocket() throws {
        let path = "/tmp/rf-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = try Self.bind(path)
        defer {
            close(fd)
            unlink(path)
        }
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": path]))
        try notifier.ready(status: "serving 2 guards")
        #expect(Self.receive(fd) == "READY=1\nSTATUS=serving 2 guards\nMAINPID=\(getpid())")
        try notifier.stopping()
        #expect(Self.receive(fd) == "STOPPING=1")
    }

    @Test func sendsToAnAbstractSocket() throws {
        let name = "@rf-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try Self.bind(name)
        defer { close(fd) }
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": name]))
        try notifier.reloading()
        let message = Self.receive(fd)
        #expect(message.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        try notifier.watchdog()
        #expect(Self.receive(fd) == "WATCHDOG=1")
    }

    @Test func absentOrUnusableSocketMeansNoNotifier() {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 200)]) == nil)
    }

    @Test func watchdogIntervalHonoursWatchdogPid() throws {
        let mine = try #require(
            SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "\(getpid())"]))
        #expect(mine.watchdogInterval == .seconds(3))
        #expect(mine.watchdogPingInterval == .milliseconds(1500))
        let other = try #require(
            SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"]))
        #expect(other.watchdogInterval == nil)
        let none = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x"]))
        #expect(none.watchdogInterval == nil)
    }

    @Test func aGoneSocketIsAnErrorNotACrash() throws {
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/tmp/rf-no-such-\(getpid()).sock"]))
        #expect(throws: SystemdNotifierError.self) { try notifier.watchdog() }
    }
}
