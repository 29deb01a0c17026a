import BrokerFields
import CZstd
@preconcurrency import Crypto

/// A dictionary for packing records: a template of the records it packs (the same keys,
/// paths, categories, hashes and names, without a subject, share id, fingerprint or time),
/// named by its content. Stored once (`log_dictionaries`) beside the records that name it;
/// it is immutable, and a changed one changes every body unpacked with it, which the hash
/// chain then reports.
package final class LogDictionary: Sendable {
    /// The first 63 bits of the SHA-256 of `bytes`: the same on every node and process, so a
    /// record can name its dictionary before the writer has stored it.
    package let id: Int64
    package let bytes: [UInt8]
    /// The dictionary prepared for compression once (zstd's CDict), not per record.
    private let prepared: PreparedDictionary

    package init(bytes: [UInt8]) {
        self.bytes = bytes
        id = Self.id(of: bytes)
        prepared = PreparedDictionary(bytes)
    }

    /// The id of a dictionary of these bytes (verify checks each stored one against it).
    package static func id(of bytes: [UInt8]) -> Int64 {
        SHA256.hash(data: bytes).withUnsafeBytes { raw in
            Int64(bitPattern: raw.loadUnaligned(as: UInt64.self).bigEndian & 0x7FFF_FFFF_FFFF_FFFF)
        }
    }

    fileprivate var compressionDictionary: OpaquePointer { prepared.pointer }
}

/// A zstd CDict: owned here, only read by compressions (zstd documents a CDict as shareable
/// between threads once made).
private final class PreparedDictionary: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ bytes: [UInt8]) {
        guard let made = bytes.withUnsafeBytes({ ZSTD_createCDict($0.baseAddress, $0.count, RecordPacking.level) }) else {
            preconditionFailure("zstd could not prepare a log dictionary (out of memory)")
        }
        pointer = made
    }

    deinit { ZSTD_freeCDict(pointer) }
}

/// A record's body as stored: its canonical bytes without the `seq` digits, compressed with
/// Zstandard against a `LogDictionary`.
///
/// A record's bytes repeat, almost entirely, those of every other record of the same
/// operation: member names, field paths and categories, the contract's and adapter's
/// hashes. Against a template of the same operation as the dictionary, the bench's push
/// intent shrinks about 7× (1,852 → ~250 bytes: what is left is what differs, the
/// fingerprints, ids and times). zstd at a fast level and not zlib: under callgrind zlib's
/// deflate with a preset dictionary cost 97–126k instructions per record, zstd ~30k
/// compressing and ~4k decompressing, for the same size. The canonical bytes, and so the
/// hash chain, do not change: `unpack` gives them back exactly.
///
/// Layout: one format byte (1), the head's length as a LEB128 varint, then one zstd frame of
/// head ‖ tail (`ZSTD_compress_usingCDict`'s frame: content size in its header, no checksum
/// (the chain hash covers the bytes), no dictionary id (a raw-content dictionary has none))
/// without its constant 4-byte magic number. The seq digits go between head and tail when
/// unpacked (`CanonicalParts`).
package enum RecordPacking {
    static let format: UInt8 = 1
    /// zstd's level -1: within a few bytes of level 1 on records, at about half the work.
    static let level: Int32 = -1
    /// No record unpacks to more than this (a record's size is bounded: repeated paths fold).
    static let maximumBody: UInt64 = 16 << 20
    /// Every zstd frame begins with it (little-endian 0xFD2FB528); not stored.
    private static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    /// `head ‖ tail` packed against `dictionary`.
    package static func pack(head: [UInt8], tail: [UInt8], dictionary: LogDictionary) -> [UInt8] {
        var joined = head
        joined.append(contentsOf: tail)
        var out = [UInt8](repeating: 0, count: 1 + 5 + ZSTD_compressBound(joined.count))
        var offset = 0
        out[offset] = format
        offset += 1
        var length = head.count
        repeat {
            out[offset] = UInt8(length & 0x7F) | (length >= 0x80 ? 0x80 : 0)
            offset += 1
            length >>= 7
        } while length > 0
        let context = compressors.take()
        defer { compressors.give(context) }
        let written = out.withUnsafeMutableBytes { o in
            joined.withUnsafeBytes { i in
                ZSTD_compress_usingCDict(context.pointer, o.baseAddress! + offset, o.count - offset, i.baseAddress, i.count,
                                         dictionary.compressionDictionary)
            }
        }
        precondition(ZSTD_isError(written) == 0 && written > 4, "zstd could not compress a log record within its bound")
        // Drop the frame's magic number: every stored frame has it.
        out.removeSubrange(offset..<(offset + 4))
        out.removeLast(out.count - (offset + written - 4))
        return out
    }

    /// The canonical body of a packed record at `seq`, or `nil` when `packed` is not a packed
    /// body this format reads, or does not decompress against `dictionary`.
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
        var frame = magic
        frame.append(contentsOf: packed[offset...])
        let size = frame.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // Unknown (ZSTD_CONTENTSIZE_UNKNOWN) and error (ZSTD_CONTENTSIZE_ERROR) are the two largest values.
        guard size <= maximumBody, Int(size) >= headLength else { return nil }
        var joined = [UInt8](repeating: 0, count: Int(size))
        let context = decompressors.take()
        defer { decompressors.give(context) }
        let produced = joined.withUnsafeMutableBytes { o in
            frame.withUnsafeBytes { i in
                ZSTD_decompress_usingDict(context.pointer, o.baseAddress, o.count, i.baseAddress, i.count,
                                          dictionary.baseAddress, dictionary.count)
            }
        }
        guard ZSTD_isError(produced) == 0, produced == Int(size) else { return nil }
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

    /// zstd contexts hold their work buffers between calls: each is reused, one per concurrent caller.
    private static let compressors = ContextPool { Context(compressing: true) }
    private static let decompressors = ContextPool { Context(compressing: false) }
}

/// A ZSTD_CCtx or ZSTD_DCtx, used by one caller at a time (the pool hands it out and takes it back under its lock).
private final class Context: @unchecked Sendable {
    let pointer: OpaquePointer
    private let compressing: Bool

    init(compressing: Bool) {
        self.compressing = compressing
        guard let made = compressing ? ZSTD_createCCtx() : ZSTD_createDCtx() else {
            preconditionFailure("zstd could not make a context (out of memory)")
        }
        pointer = made
    }

    deinit {
        if compressing { ZSTD_freeCCtx(pointer) } else { ZSTD_freeDCtx(pointer) }
    }
}

/// Reusable contexts; more are made when all are in use, and at most `limit` are kept.
private final class ContextPool: Sendable {
    private let idle = Locked<[Context]>([])
    private let make: @Sendable () -> Context
    private let limit = 16

    init(_ make: @escaping @Sendable () -> Context) { self.make = make }

    func take() -> Context { idle.withLock { $0.popLast() } ?? make() }

    func give(_ context: Context) {
        idle.withLock { if $0.count < limit { $0.append(context) } }
    }
}
