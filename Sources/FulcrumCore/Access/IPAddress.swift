/// An IPv4 or IPv6 address as a 128-bit number: IPv4 addresses are mapped into `::ffff:0:0/96`
/// (RFC 4291 §2.5.5.2), so one comparison of two integers serves both families. Parsed from text
/// without allocating, or made from the bytes of a socket address.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The first and last 64 bits.
    public let high: UInt64
    public let low: UInt64

    /// `::`, for a connection whose peer has no IP address.
    public static let unspecified = IPAddress(high: 0, low: 0)

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its 32 bits (the first octet in the most significant byte).
    public init(ipv4 bits: UInt32) {
        high = 0
        low = 0xFFFF_0000_0000 | UInt64(bits)
    }

    /// Whether this is a (mapped) IPv4 address.
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The bit at `index` (0 is the most significant).
    @inline(__always)
    func bit(_ index: Int) -> Bool {
        index < 64 ? (high >> UInt64(63 - index)) & 1 == 1 : (low >> UInt64(127 - index)) & 1 == 1
    }

    /// Parses a dotted IPv4 address or an IPv6 address (with an optional `%zone`, and optionally
    /// in brackets); `nil` when the text is neither. Mixed notation (`::ffff:1.2.3.4`) is not
    /// accepted: an IPv4 client is written as one.
    public init?(parsing text: Substring) {
        var utf8 = text.utf8[...]
        if utf8.first == UInt8(ascii: "["), utf8.last == UInt8(ascii: "]") { utf8 = utf8.dropFirst().dropLast() }
        if utf8.contains(UInt8(ascii: ":")) {
            if let percent = utf8.firstIndex(of: UInt8(ascii: "%")) { utf8 = utf8[..<percent] }
            guard let (high, low) = Self.parseIPv6(utf8) else { return nil }
            self.init(high: high, low: low)
        } else {
            guard let bits = Self.parseIPv4(utf8) else { return nil }
            self.init(ipv4: bits)
        }
    }

    private static func parseIPv4(_ utf8: Substring.UTF8View.SubSequence) -> UInt32? {
        var bits: UInt32 = 0
        var octets = 0
        var value = 0
        var digits = 0
        for byte in utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                bits = bits << 8 | UInt32(value)
                octets += 1
                value = 0
                digits = 0
            } else if (0x30...0x39).contains(byte) {
                digits += 1
                value = value * 10 + Int(byte - 0x30)
                guard digits <= 3, value <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return bits << 8 | UInt32(value)
    }

    private static func parseIPv6(_ utf8: Substring.UTF8View.SubSequence) -> (UInt64, UInt64)? {
        // groups before and after `::`, as 16-bit values packed into two 128-bit halves
        var head: (UInt64, UInt64) = (0, 0)
        var tail: (UInt64, UInt64) = (0, 0)
        var headCount = 0
        var tailCount = 0
        var seenDoubleColon = false
        var group: UInt64 = 0
        var digits = 0
        var previousColon = false
        var index = utf8.startIndex
        func push(_ value: UInt64, into halves: inout (UInt64, UInt64)) {
            halves.0 = halves.0 << 16 | halves.1 >> 48
            halves.1 = halves.1 << 16 | value
        }
        if utf8.starts(with: "::".utf8) {
            seenDoubleColon = true
            index = utf8.index(index, offsetBy: 2)
            if index == utf8.endIndex { return (0, 0) }
        } else if utf8.first == UInt8(ascii: ":") {
            return nil
        }
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: ":") {
                if previousColon {
                    guard !seenDoubleColon else { return nil }
                    seenDoubleColon = true
                } else {
                    guard digits > 0 else { return nil }
                    if seenDoubleColon { push(group, into: &tail); tailCount += 1 } else { push(group, into: &head); headCount += 1 }
                    group = 0
                    digits = 0
                }
                previousColon = true
            } else {
                guard let value = HTTPSyntax.hexDigitValue(byte), digits < 4 else { return nil }
                group = group << 4 | UInt64(value)
                digits += 1
                previousColon = false
            }
            index = utf8.index(after: index)
        }
        if digits > 0 {
            if seenDoubleColon { push(group, into: &tail); tailCount += 1 } else { push(group, into: &head); headCount += 1 }
        } else if !(previousColon && seenDoubleColon && utf8.last == UInt8(ascii: ":") && utf8.dropLast().last == UInt8(ascii: ":")) {
            return nil  // a single trailing ':'
        }
        let total = headCount + tailCount
        guard seenDoubleColon ? total <= 7 : total == 8 else { return nil }
        // shift the head groups to the front; the tail stays at the end
        let shift = 8 - headCount
        var high = head.0
        var low = head.1
        for _ in 0..<shift {
            high = high << 16 | low >> 48
            low <<= 16
        }
        return (high | tail.0, low | tail.1)
    }

    public var description: String {
        if isIPv4 {
            let bits = UInt32(truncatingIfNeeded: low)
            return "\(bits >> 24).\(bits >> 16 & 0xFF).\(bits >> 8 & 0xFF).\(bits & 0xFF)"
        }
        var groups: [String] = []
        for index in 0..<8 {
            let word = index < 4 ? high >> UInt64(48 - 16 * index) : low >> UInt64(48 - 16 * (index - 4))
            groups.append(String(word & 0xFFFF, radix: 16))
        }
        return groups.joined(separator: ":")
    }
}

/// An IPv4 or IPv6 address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The first address of the range.
    public let network: IPAddress
    /// The length of the prefix over the 128 bits (an IPv4 `/8` is 104).
    public let prefixLength: Int
    public let description: String

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; `nil` when it is neither. Bits beyond the prefix are
    /// ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parsing: parts[0]), !parts[0].hasPrefix("[") else { return nil }
        let maximum = address.isIPv4 && !parts[0].contains(":") ? 32 : 128
        var length = maximum
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCII), let value = Int(parts[1]), (0...maximum).contains(value) else { return nil }
            length = value
        }
        prefixLength = maximum == 32 ? length + 96 : length
        network = Self.masked(address, prefixLength)
        description = text
    }

    private static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        let highMask: UInt64 = length >= 64 ? .max : (length == 0 ? 0 : ~(UInt64.max >> UInt64(length)))
        let lowMask: UInt64 = length <= 64 ? 0 : (length >= 128 ? .max : ~(UInt64.max >> UInt64(length - 64)))
        return IPAddress(high: address.high & highMask, low: address.low & lowMask)
    }

    /// Whether `address` falls in the range.
    public func contains(_ address: IPAddress) -> Bool {
        Self.masked(address, prefixLength) == network
    }

    /// Whether the textual `address` falls in the range.
    public func contains(_ address: Substring) -> Bool {
        IPAddress(parsing: address).map(contains) ?? false
    }
}
