import Logging
import RingfencePolicy
import RingfenceSockets
import RingfenceStatus

/// The daemon's open-file limit against what its relay guards may hold: the limit raised to the
/// hard limit at start, and a warning whenever a policy's `max_connections` could outgrow it.
/// A relayed connection holds its two sockets, and a pipe (two more) each way only while bytes
/// are in it (docs/relay-sizing.md).
enum DescriptorBudget {
    /// Descriptors an idle relayed connection holds: its two sockets.
    static let perIdleConnection = 2
    /// Descriptors a relayed connection holds while bytes move both ways: two pipes more.
    static let perBusyConnection = 6
    /// Kept for everything else: listeners, the control socket, netlink, logs.
    static let reserve = 256

    /// Raises the soft limit to the hard limit and logs both.
    static func raise(logger: Logger) {
        guard let limit = Posix.raiseOpenFileLimit() else {
            return logger.warning("cannot read the open file limit (RLIMIT_NOFILE)")
        }
        let metadata: Logger.Metadata = ["limit": "\(limit.now)", "was": "\(limit.before)", "hard": "\(limit.hard)"]
        if limit.now < limit.hard {
            logger.warning("could not raise the open file limit to the hard limit", metadata: metadata)
        } else {
            logger.info("open file limit", metadata: metadata)
        }
    }

    /// Warns when the relay guards of `policy`, all full, would need more descriptors than the
    /// limit: idle, or with bytes moving on every connection.
    static func check(_ policy: Policy, logger: Logger) {
        guard let limit = Posix.openFileLimit() else { return }
        let connections = policy.guards.reduce(0) { total, item in
            if case .relay(let relay) = item.settings { return total + relay.maxConnections }
            return total
        }
        guard connections > 0 else { return }
        let idle = connections * perIdleConnection + reserve
        let busy = connections * perBusyConnection + reserve
        guard busy > limit else { return }
        let metadata: Logger.Metadata = [
            "limit": "\(limit)", "max_connections": "\(connections)", "needed_idle": "\(idle)", "needed_busy": "\(busy)",
        ]
        if idle > limit {
            logger.warning(
                "open file limit below what max_connections needs: connections will be refused; raise LimitNOFILE",
                metadata: metadata)
        } else {
            logger.info("open file limit holds max_connections idle, not all of them moving bytes at once", metadata: metadata)
        }
    }

    /// Open descriptors against the limit, for `proxyctl status`.
    static func status() -> DescriptorStatus? {
        guard let open = Posix.openFileCount(), let limit = Posix.openFileLimit() else { return nil }
        return DescriptorStatus(open: open, limit: limit)
    }
}
