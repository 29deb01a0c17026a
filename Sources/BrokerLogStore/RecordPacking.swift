import BrokerFields
import CZlib
@preconcurrency import Crypto

/// A preset dictionary for packing records: a template of the records it packs (the same
/// keys, paths, categories, hashes and names, without a subject, share id, fingerprint or
/// time), named by its content. Stored once (`log_dictionaries`) beside the records that
/// name it; it is immutable, and a changed one changes every body unpacked with it, which
/// the hash chain then reports.
package struct LogDictionary: Sendable, Hashable {
    /// The first 63 bits of the SHA-256 of `bytes`: the same on every node and process, so a
    /// record can name its dictionary before the writer has stored it.
    package let id: Int64
    package let bytes: [UInt8]

    package init(bytes: [UInt8]) {
        self.bytes = bytes
        id = SHA256.hash(data: bytes).withUnsafeBytes { raw in
            Int64(bitPattern: raw.loadUnaligned(as: UInt64.self).bigEndian & 0x7FFF_FFFF_FFFF_FFFF)
        }
    }
}

/// A record's body as stored: its canonical bytes without the `seq` digits, deflated
/// against a `LogDictionary`.
///
/// A record's bytes repeat, almost entirely, those of every other record of the same
/// operation: member names, field paths and categories, the contract's and adapter's
/// hashes. Deflated on their own they shrink about 2.6× (1,852 → 707 bytes for the bench's
/// push); against a template of the same operation as zlib's preset dictionary, about 7×
/// (→ ~250 bytes: what is left is what differs, the fingerprints, ids and times). The
/// canonical bytes, and so the hash chain, do not change: `unpack` gives them back exactly.
///
/// Layout: one format byte (1), the head's length as a LEB128 varint, then raw deflate
/// (no zlib header or checksum: the chain hash covers the bytes) of head ‖ tail. The seq
/// digits go between head and tail when unpacked (`CanonicalParts`).
package enum RecordPacking {
    static let format: UInt8 = 1
    /// No record unpacks to more than this (a record's size is bounded: repeated paths fold).
    static let maximumBody = 16 << 20

    /// `head ‖ tail` packed against `dictionary`.
    package static func pack(head: [UInt8], tail: [UInt8], dictionary: LogDictionary) -> [UInt8] {
        let stream = deflaters.take()
        defer { deflaters.give(stream) }
        return stream.pack(head: head, tail: tail, dictionary: dictionary.bytes)
    }

    /// The canonical body of a packed record at `seq`, or `nil` when `packed` is not a packed
    /// body this format reads, or does not inflate against `dictionary`.
    package static func unpack(_ packed: UnsafeRawBufferPointer, seq: Int64,
                               dictionary: UnsafeRawBufferPointer) -> [UInt8]? {
        guard packed.count >= 2, packed[0] == format else { return nil }
        var offset = 1
        var headLength = 0
        var shift = 0
        while true {
            guard offset < packed.count, shift < 28 else { return nil }
            let byte = packed[offset]
            offset += 1
            headLength |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        let stream = inflaters.take()
        defer { inflaters.give(stream) }
        guard let joined = stream.inflate(UnsafeRawBufferPointer(rebasing: packed[offset...]), dictionary: dictionary),
              headLength <= joined.count else { return nil }
        var body: [UInt8] = []
        body.reserveCapacity(joined.count + 20)
        body.append(contentsOf: joined[..<headLength])
        CanonicalJSON.writeInt(seq, to: &body)
        body.append(contentsOf: joined[headLength...])
        return body
    }

    /// `unpack` on arrays (tests, and callers that hold the bytes already).
    package static func unpack(_ packed: [UInt8], seq: Int64, dictionary: [UInt8]) -> [UInt8]? {
        packed.withUnsafeBytes { p in dictionary.withUnsafeBytes { d in unpack(p, seq: seq, dictionary: d) } }
    }

    /// zlib streams are dear to set up (a deflater allocates its window and hash tables): each is
    /// reset and reused, one per concurrent caller.
    private static let deflaters = StreamPool { Deflater() }
    private static let inflaters = StreamPool { Inflater() }
}

/// Reusable zlib streams; more are made when all are in use, and at most `limit` are kept.
private final class StreamPool<Stream: AnyObject>: Sendable {
    private let idle = Locked<[UnsafeSendable<Stream>]>([])
    private let make: @Sendable () -> Stream
    private let limit = 16

    init(_ make: @escaping @Sendable () -> Stream) { self.make = make }

    func take() -> Stream { idle.withLock { $0.popLast()?.value } ?? make() }

    func give(_ stream: Stream) {
        idle.withLock { if $0.count < limit { $0.append(UnsafeSendable(value: stream)) } }
    }
}

/// A stream used by one caller at a time (the pool hands it out and takes it back under its lock).
private struct UnsafeSendable<Value>: @unchecked Sendable { var value: Value }

private final class Deflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() {
        stream.initialize(to: z_stream())
        // Level 1 (deflate_fast): within 5 % of level 6 on records, at half the work. A 4 KiB window
        // (windowBits 12) and memLevel 4 keep each reset small; records and templates are a few KiB.
        let status = deflateInit2_(stream, 1, Z_DEFLATED, -12, 4, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib deflateInit2 failed: \(status)")
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    func pack(head: [UInt8], tail: [UInt8], dictionary: [UInt8]) -> [UInt8] {
        deflateReset(stream)
        dictionary.withUnsafeBufferPointer { d in
            _ = deflateSetDictionary(stream, d.baseAddress, UInt32(d.count))
        }
        var out = [UInt8](repeating: 0, count: 1 + 5 + Int(deflateBound(stream, UInt(head.count + tail.count))) + 8)
        var offset = 0
        out[offset] = RecordPacking.format
        offset += 1
        var length = head.count
        repeat {
            out[offset] = UInt8(length & 0x7F) | (length >= 0x80 ? 0x80 : 0)
            offset += 1
            length >>= 7
        } while length > 0
        out.withUnsafeMutableBufferPointer { o in
            stream.pointee.next_out = o.baseAddress! + offset
            stream.pointee.avail_out = UInt32(o.count - offset)
            head.withUnsafeBufferPointer { h in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: h.baseAddress)
                stream.pointee.avail_in = UInt32(h.count)
                _ = deflate(stream, Z_NO_FLUSH)
            }
            tail.withUnsafeBufferPointer { t in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: t.baseAddress)
                stream.pointee.avail_in = UInt32(t.count)
                let status = deflate(stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "zlib deflate did not finish within its bound: \(status)")
            }
            stream.pointee.next_in = nil
        }
        out.removeLast(Int(stream.pointee.avail_out))
        stream.pointee.next_out = nil
        return out
    }
}

private final class Inflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() {
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib inflateInit2 failed: \(status)")
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    func inflate(_ input: UnsafeRawBufferPointer, dictionary: UnsafeRawBufferPointer) -> [UInt8]? {
        guard inflateReset(stream) == Z_OK else { return nil }
        // Raw deflate takes its dictionary before the first byte (no header asks for it).
        if let base = dictionary.baseAddress, dictionary.count > 0 {
            guard inflateSetDictionary(stream, base.assumingMemoryBound(to: UInt8.self), UInt32(dictionary.count)) == Z_OK
            else { return nil }
        }
        var out = [UInt8](repeating: 0, count: max(256, input.count * 8))
        var produced = 0
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
        stream.pointee.avail_in = UInt32(input.count)
        defer { stream.pointee.next_in = nil; stream.pointee.next_out = nil }
        while true {
            let status: Int32 = out.withUnsafeMutableBufferPointer { o in
                stream.pointee.next_out = o.baseAddress! + produced
                stream.pointee.avail_out = UInt32(o.count - produced)
                let status = CZlib.inflate(stream, Z_NO_FLUSH)
                produced = o.count - Int(stream.pointee.avail_out)
                return status
            }
            switch status {
            case Z_STREAM_END:
                // Nothing may follow the deflate stream.
                guard stream.pointee.avail_in == 0 else { return nil }
                out.removeLast(out.count - produced)
                return out
            case Z_OK, Z_BUF_ERROR:
                guard stream.pointee.avail_out == 0 else { return nil }   // input ended early
                guard out.count < RecordPacking.maximumBody else { return nil }
                out.append(contentsOf: repeatElement(0, count: out.count))
            default:
                return nil
            }
        }
    }
}
