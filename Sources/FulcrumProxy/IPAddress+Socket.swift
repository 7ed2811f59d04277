import FulcrumCore
import NIOCore

extension IPAddress {
    /// The address of an IPv4 or IPv6 socket address, from its bytes (no text in between); `nil`
    /// for a Unix domain socket.
    init?(socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let address):
            self.init(ipv4: UInt32(bigEndian: address.address.sin_addr.s_addr))
        case .v6(let address):
            let (high, low) = withUnsafeBytes(of: address.address.sin6_addr) { raw in
                (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self.init(high: high, low: low)
        case .unixDomainSocket:
            return nil
        }
    }
}
