import FulcrumCore

/// Generated request IDs: 16 lowercase hex digits (64 random bits) from the loop's generator.
enum RequestID {
    static func make(using random: inout FastRandom) -> String {
        let value = random.next()
        return String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                let digit = UInt8((value >> (60 - 4 * UInt64(index))) & 0xf)
                buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") - 10 + digit
            }
            return 16
        }
    }
}
