import Foundation

/// Reads what `nft -j list …` prints (libnftables' JSON schema 1): the elements of a set, with
/// their timeouts and counters, and named counters. Pure: the text in, values out.
///
/// An element's value is a string (`"10.0.0.3"`), a number (a port), `{"prefix": {"addr", "len"}}`,
/// `{"range": [low, high]}` or `{"concat": [...]}`; `expires` and `timeout` are whole seconds.
enum NFTListing {
    /// One element of a set as listed.
    struct Element {
        /// The key, each part as text: `["10.0.0.3", "tcp", "5000"]`, `["10.0.0.0/24"]`, `["10.0.0.1-10.0.0.6"]`.
        var key: [String]
        /// Seconds left before the element's timeout, if it has one.
        var expires: Int?
        var timeout: Int?
        var packets: UInt64?
    }

    /// The elements of every set in a listing.
    static func elements(_ json: String) -> [Element] {
        objects(json, "set").flatMap { set -> [Element] in
            guard let elements = set["elem"] as? [Any] else { return [] }
            return elements.compactMap(element)
        }
    }

    /// Named counters' packet counts, by name.
    static func counters(_ json: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for counter in objects(json, "counter") {
            guard let name = counter["name"] as? String, let packets = counter["packets"] as? NSNumber else { continue }
            out[name] = packets.uint64Value
        }
        return out
    }

    private static func objects(_ json: String, _ kind: String) -> [[String: Any]] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let items = root["nftables"] as? [Any]
        else { return [] }
        return items.compactMap { ($0 as? [String: Any])?[kind] as? [String: Any] }
    }

    private static func element(_ raw: Any) -> Element? {
        // A plain element is its value alone; one with options is wrapped in {"elem": {...}}.
        guard let wrapped = (raw as? [String: Any])?["elem"] as? [String: Any] else {
            return value(raw).map { Element(key: $0) }
        }
        guard let key = wrapped["val"].flatMap(value) else { return nil }
        let counter = wrapped["counter"] as? [String: Any]
        return Element(
            key: key, expires: (wrapped["expires"] as? NSNumber)?.intValue, timeout: (wrapped["timeout"] as? NSNumber)?.intValue,
            packets: (counter?["packets"] as? NSNumber)?.uint64Value)
    }

    private static func value(_ raw: Any) -> [String]? {
        if let text = raw as? String { return [text] }
        if let number = raw as? NSNumber { return [number.stringValue] }
        guard let object = raw as? [String: Any] else { return nil }
        if let parts = object["concat"] as? [Any] {
            let texts = parts.compactMap { value($0)?.first }
            return texts.count == parts.count ? texts : nil
        }
        if let prefix = object["prefix"] as? [String: Any], let address = prefix["addr"] as? String,
            let length = prefix["len"] as? NSNumber
        {
            return ["\(address)/\(length.intValue)"]
        }
        if let range = object["range"] as? [Any], range.count == 2, let low = value(range[0])?.first,
            let high = value(range[1])?.first
        {
            return ["\(low)-\(high)"]
        }
        return nil
    }
}
