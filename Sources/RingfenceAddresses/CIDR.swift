/// An address block: an address and a prefix length, with no host bits set.
///
/// Parsing is deliberately strict. `10.0.0.5/24` is refused rather than widened to `10.0.0.0/24`:
/// a policy typo must never silently admit more peers than its author meant.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block.
    public let address: IPAddress
    /// The number of leading bits that are fixed: 0–32 for IPv4, 0–128 for IPv6.
    public let prefixLength: Int

    /// Makes a block, refusing prefix lengths out of range and addresses with host bits set.
    public init(address: IPAddress, prefixLength: Int) throws(AddressParseError) {
        guard (0...address.bitWidth).contains(prefixLength) else {
            throw .prefixOutOfRange(prefixLength, family: address.isIPv4 ? 4 : 6)
        }
        let block = CIDR(unchecked: address, prefixLength: prefixLength)
        guard block.first == address else {
            throw .hostBitsSet(
                address.description + "/\(prefixLength)",
                network: "\(block.first)/\(prefixLength)",
                host: "\(address)/\(address.bitWidth)"
            )
        }
        self = block
    }

    /// Parses `ADDRESS` (a single host) or `ADDRESS/PREFIX`. An IPv4-mapped IPv6 block with a prefix of
    /// 96 or more becomes the IPv4 block it stands for (`::ffff:10.0.0.0/120` is `10.0.0.0/24`).
    public init(parsing text: String) throws(AddressParseError) {
        guard !text.isEmpty else { throw .empty }
        // Byte-wise: a policy may list tens of thousands of blocks, and Character-wise splitting
        // and searching cost more than the rest of parsing them.
        let bytes = text.utf8
        let slash = bytes.firstIndex(of: UInt8(ascii: "/"))
        let addressText = text[..<(slash ?? text.endIndex)]
        if addressText.utf8.contains(UInt8(ascii: "%")) { throw .zoneNotAllowed(text) }
        // A mapped address parses as .v4; keep the raw IPv6 value to interpret the prefix correctly.
        let rawV6: UInt128? =
            addressText.utf8.contains(UInt8(ascii: ":")) ? IPAddress.parseIPv6(String(addressText)) : nil
        guard let address = IPAddress(addressText) else {
            throw .invalidAddress(String(addressText))
        }
        guard let slash else {
            self.init(unchecked: address, prefixLength: address.bitWidth)
            return
        }
        let prefixText = text[text.utf8.index(after: slash)...]
        guard !prefixText.isEmpty, prefixText.utf8.count <= 3, prefixText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let prefix = Int(prefixText)
        else {
            throw .invalidPrefix(String(prefixText))
        }
        if let rawV6, case .v4 = address {
            // Written as IPv6: the prefix counts IPv6 bits.
            guard prefix <= 128 else { throw .prefixOutOfRange(prefix, family: 6) }
            if prefix >= 96 {
                try self.init(address: address, prefixLength: prefix - 96)
            } else {
                try self.init(address: .v6(rawV6), prefixLength: prefix)
            }
            return
        }
        try self.init(address: address, prefixLength: prefix)
    }

    init(unchecked address: IPAddress, prefixLength: Int) {
        switch address {
        case .v4(let value):
            let mask: UInt32 = prefixLength == 0 ? 0 : ~0 << UInt32(32 - prefixLength)
            self.address = .v4(value & mask)
        case .v6(let value):
            let mask: UInt128 = prefixLength == 0 ? 0 : ~0 << UInt128(128 - prefixLength)
            self.address = .v6(value & mask)
        }
        self.prefixLength = prefixLength
    }

    /// The first address of the block.
    public var first: IPAddress { address }

    /// The last address of the block.
    public var last: IPAddress {
        switch address {
        case .v4(let value):
            let hostMask: UInt32 = prefixLength == 0 ? ~0 : (1 << UInt32(32 - prefixLength)) &- 1
            return .v4(value | hostMask)
        case .v6(let value):
            let hostMask: UInt128 = prefixLength == 0 ? ~0 : (1 << UInt128(128 - prefixLength)) &- 1
            return .v6(value | hostMask)
        }
    }

    public var description: String {
        prefixLength == address.bitWidth ? address.description : "\(address)/\(prefixLength)"
    }
}
