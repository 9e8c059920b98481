import CoreMetrics

/// Publishes totals and levels kept elsewhere into swift-metrics, once per scrape.
///
/// Why at scrape time, and not counted where each event happens: the guards' data-path counters
/// (accepted, denied by reason, bytes, messages, drops, evictions, cuts, violations, upstream
/// connects) live in structs confined to each guard's event loop and are read through
/// snapshots, so the data path pays no atomic operation per byte or message, and
/// `proxyctl status` reads the very same totals; the daemon adds a replaced guard's totals to its
/// successor's; and the kernel keeps the fence's counters. So at each scrape the daemon hands
/// over every total and level it has, and this type advances each swift-metrics `Counter` by the
/// difference since the last scrape and sets each `Meter` (a Prometheus gauge). A total below the
/// last one means that its source started again from zero (the kernel's table made anew), so all
/// of it is new: a published counter never goes backwards.
///
/// A series missing from a scrape (a peer that disconnected, a guard a reload removed) is
/// destroyed, which takes it out of the registry: the registry holds only the last scrape's
/// series, so a scan of many addresses cannot grow it.
///
/// One scrape at a time: the caller serializes `publish`.
public struct MetricsPublisher: Sendable {
    /// One series of a scrape: its family, its labels in order, and its value.
    public struct Sample: Sendable {
        enum Reading: Sendable {
            case total(UInt64)
            case level(Int64)
        }

        public let family: MetricFamily
        public let labels: [(String, String)]
        let reading: Reading

        /// A counter's total so far.
        public static func total(_ family: MetricFamily, _ labels: [(String, String)] = [], _ value: UInt64) -> Sample {
            assert(family.kind == .counter, "\(family.name) is not a counter")
            return Sample(family: family, labels: labels, reading: .total(value))
        }

        /// A gauge's value now.
        public static func level(_ family: MetricFamily, _ labels: [(String, String)] = [], _ value: Int) -> Sample {
            assert(family.kind == .gauge, "\(family.name) is not a gauge")
            return Sample(family: family, labels: labels, reading: .level(Int64(value)))
        }

        var key: SeriesKey { SeriesKey(name: family.name, labels: labels.flatMap { [$0.0, $0.1] }) }
    }

    struct SeriesKey: Hashable, Sendable {
        var name: String
        var labels: [String]
    }

    private struct Published: Sendable {
        let counter: CoreMetrics.Counter
        var last: UInt64
    }

    private let factory: any MetricsFactory
    private var counters: [SeriesKey: Published] = [:]
    private var meters: [SeriesKey: Meter] = [:]

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// How many series are published now (counters and gauges).
    public var seriesCount: Int { counters.count + meters.count }

    /// Brings the published series to `samples`: counters advanced, gauges set, and series not
    /// in `samples` destroyed.
    public mutating func publish(_ samples: [Sample]) {
        var seen = Set<SeriesKey>()
        for sample in samples {
            let key = sample.key
            seen.insert(key)
            switch sample.reading {
            case .total(let total):
                if var published = counters[key] {
                    let delta = total >= published.last ? total - published.last : total
                    published.counter.increment(by: Int64(clamping: delta))
                    published.last = total
                    counters[key] = published
                } else {
                    let counter = CoreMetrics.Counter(
                        label: sample.family.name, dimensions: sample.labels, factory: factory)
                    counter.increment(by: Int64(clamping: total))
                    counters[key] = Published(counter: counter, last: total)
                }
            case .level(let level):
                let meter = meters[key] ?? Meter(label: sample.family.name, dimensions: sample.labels, factory: factory)
                meter.set(level)
                meters[key] = meter
            }
        }
        for (key, published) in counters where !seen.contains(key) {
            published.counter.destroy()
            counters[key] = nil
        }
        for (key, meter) in meters where !seen.contains(key) {
            meter.destroy()
            meters[key] = nil
        }
    }
}
