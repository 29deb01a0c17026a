#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ip_prefix`: a strict reader of addresses, fail closed.
///
/// The value must be an IPv4 address in dotted decimal (no leading zeros) or an IPv6 address in
/// its text form (RFC 4291 §2.2; an IPv4 tail allowed), nothing else: no zone (`%eth0`), no
/// brackets, no port, no prefix length, no space, at most 45 characters. An IPv6 address that
/// carries an IPv4 address in a place fixed by its standard — IPv4-mapped `::ffff:0:0/96`,
/// IPv4-translated `::ffff:0:0:0/96`, IPv4-compatible `::/96`, NAT64 `64:ff9b::/96`, 6to4
/// `2002::/16`, Teredo `2001::/32` (the client's address, inverted, in the last 32 bits) — is cut
/// as that IPv4 address, to the `ipv4` prefix, and sent in IPv4 form: cutting the IPv6 form to
/// `/48` would keep a 6to4 address's whole IPv4 (`2002:72f7:3202::` is 114.247.50.2), and the
/// IPv4 network is what an IP location service can place. The local-use NAT64 prefix
/// `64:ff9b:1::/48` is refused: its operator chooses where the IPv4 bits sit (RFC 6052 §2.2), so
/// no cut can be known to remove them.
extension Minimisation {
    /// Where an IPv6 address keeps an IPv4 address.
    enum EmbeddedIPv4: Equatable {
        case none
        /// The embedded address, host byte order.
        case ipv4(UInt32)
        /// It may carry one, at a place the address does not tell.
        case unplaced
    }

    /// The network prefix of an IPv4 or IPv6 address (host bits zero), in its usual text form; nil when
    /// the value is not strictly one address, or embeds IPv4 where no cut is known to remove it.
    static func prefix(_ text: String, ipv4: Int, ipv6: Int) -> String? {
        // inet_pton reads a C string: a NUL, or anything outside the address alphabet, ends here.
        guard !text.isEmpty, text.utf8.count <= 45,
              text.utf8.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else { return nil }
        if !text.utf8.contains(UInt8(ascii: ":")) {
            var v4 = in_addr()
            guard inet_pton(AF_INET, text, &v4) == 1 else { return nil }
            return ipv4Text(UInt32(bigEndian: v4.s_addr) & ipv4Mask(ipv4))
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        var bytes = withUnsafeBytes(of: &v6) { Array($0) }
        switch embeddedIPv4(bytes) {
        case .ipv4(let address): return ipv4Text(address & ipv4Mask(ipv4))
        case .unplaced: return nil
        case .none: break
        }
        for k in 0..<16 {
            let keep = max(0, min(8, ipv6 - k * 8))
            bytes[k] &= keep == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        // A cut of an address outside those ranges cannot land in one with more than the IPv4
        // prefix (its bits there are the input's bits or zero); checked all the same, fail closed.
        switch embeddedIPv4(bytes) {
        case .none: break
        case .ipv4(let address) where address & ipv4Mask(ipv4) == address: break
        default: return nil
        }
        return bytes.withUnsafeBytes { format(AF_INET6, $0, length: Int(INET6_ADDRSTRLEN)) }
    }

    /// The IPv4 address an IPv6 address (16 bytes, network order) carries, by the ranges above.
    static func embeddedIPv4(_ b: [UInt8]) -> EmbeddedIPv4 {
        func word(_ at: Int) -> UInt32 {
            UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
        }
        func zero(_ range: Range<Int>) -> Bool { b[range].allSatisfy { $0 == 0 } }
        if zero(0..<10) && b[10] == 0xFF && b[11] == 0xFF { return .ipv4(word(12)) }              // ::ffff:0:0/96, mapped
        if zero(0..<12) { return .ipv4(word(12)) }                                                // ::/96, compatible
        if zero(0..<8) && b[8] == 0xFF && b[9] == 0xFF && zero(10..<12) { return .ipv4(word(12)) } // ::ffff:0:0:0/96, translated
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B {
            if zero(4..<12) { return .ipv4(word(12)) }                                            // 64:ff9b::/96, NAT64
            if b[4] == 0x00 && b[5] == 0x01 { return .unplaced }                                  // 64:ff9b:1::/48, local-use NAT64
        }
        if b[0] == 0x20 && b[1] == 0x02 { return .ipv4(word(2)) }                                 // 2002::/16, 6to4
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0 { return .ipv4(~word(12)) }     // 2001::/32, Teredo client
        return .none
    }

    static func ipv4Mask(_ bits: Int) -> UInt32 { bits <= 0 ? 0 : bits >= 32 ? ~0 : ~UInt32(0) << UInt32(32 - bits) }

    static func ipv4Text(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)"
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    private static func format(_ family: Int32, _ address: UnsafeRawBufferPointer, length: Int) -> String? {
        var buffer = [CChar](repeating: 0, count: length)
        guard inet_ntop(family, address.baseAddress, &buffer, socklen_t(length)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
