/// Address ranges compiled into a binary prefix trie, each range carrying a value (the index of
/// the rule that lists it): the ranges containing an address are found in one walk down at most
/// 32 levels for IPv4 or 128 for IPv6, however many ranges there are. Built once per
/// configuration; read-only afterwards.
public struct AddressTrie: Sendable {
    private struct Node: Sendable {
        var zero: Int32 = -1
        var one: Int32 = -1
        /// The values of the ranges that end at this node.
        var values: [Int] = []
    }

    /// Index 0 is the root of IPv4 (mapped) addresses, walked from bit 96; index 1 the root of
    /// the others, walked from bit 0.
    private var nodes = [Node(), Node()]

    public init() {}

    /// Whether no range was inserted.
    public var isEmpty: Bool { nodes.count == 2 && nodes[0].values.isEmpty && nodes[1].values.isEmpty }

    public mutating func insert(_ range: AddressRange, value: Int) {
        let mappedSpace = AddressRange(parsing: "::ffff:0:0/96")!
        if range.prefixLength >= 96, mappedSpace.contains(range.network) {
            insert(from: 0, range.network, bits: 96..<range.prefixLength, value: value)
            return
        }
        insert(from: 1, range.network, bits: 0..<range.prefixLength, value: value)
        if range.prefixLength <= 96, range.contains(mappedSpace.network) {
            nodes[0].values.append(value)  // a range this wide holds every IPv4 address too
        }
    }

    private mutating func insert(from root: Int, _ address: IPAddress, bits: Range<Int>, value: Int) {
        var node = root
        for index in bits {
            let one = address.bit(index)
            var next = Int(one ? nodes[node].one : nodes[node].zero)
            if next < 0 {
                next = nodes.count
                nodes.append(Node())
                if one { nodes[node].one = Int32(next) } else { nodes[node].zero = Int32(next) }
            }
            node = next
        }
        nodes[node].values.append(value)
    }

    /// Calls `body` with the value of every range that contains `address`, widest first.
    public func forEachMatch(_ address: IPAddress, _ body: (Int) -> Void) {
        var node = address.isIPv4 ? 0 : 1
        var index = address.isIPv4 ? 96 : 0
        while true {
            for value in nodes[node].values { body(value) }
            guard index < 128 else { return }
            let next = Int(address.bit(index) ? nodes[node].one : nodes[node].zero)
            guard next >= 0 else { return }
            node = next
            index += 1
        }
    }

    /// Whether any range contains `address`.
    public func contains(_ address: IPAddress) -> Bool {
        var found = false
        forEachMatch(address) { _ in found = true }
        return found
    }
}
