import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files only the broker's own user may read: keys, the interception CA's key, the SQLite
/// database, and the state folder (`.sharebroker/`) that holds them.
///
/// Each is owner-only from its first byte: a file is opened `O_CREAT|O_EXCL` with mode 0600 (a
/// folder made with 0700), never created with the default mode and `chmod`ed after, which leaves a
/// window in which another local user can open it and keep the descriptor. The umask can only
/// take bits away, so these modes hold whatever it is.
public enum PrivateFile {
    /// What went wrong, with the path and the system's reason (never the file's content).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    /// Makes `path` and any missing parent folders, each it makes with mode 0700; folders that
    /// exist are left as they are.
    public static func makeDirectory(_ path: String) throws(Failure) {
        var missing: [String] = []
        var current = (path as NSString).standardizingPath
        while !current.isEmpty, current != "/", current != ".", !exists(current) {
            missing.append(current)
            current = (current as NSString).deletingLastPathComponent
        }
        for folder in missing.reversed() where mkdir(folder, 0o700) != 0 && errno != EEXIST {
            throw failure("could not create the folder", folder)
        }
    }

    /// Writes `bytes` as a new owner-only file at `path`: a temporary sibling opened
    /// `O_CREAT|O_EXCL|O_NOFOLLOW` with mode 0600, written, `fsync`ed, then moved to `path`:
    /// renamed over it when `replace`, else linked (so a file that appeared meanwhile is kept, and
    /// the call fails with `EEXIST`). Missing folders are made 0700.
    public static func store(_ bytes: [UInt8], at path: String, replace: Bool = false) throws(Failure) {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try makeDirectory(folder) }
        var random = SystemRandomNumberGenerator()
        let temporary = (folder.isEmpty ? "" : folder + "/") + ".\((path as NSString).lastPathComponent).\(random.next() as UInt64).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("could not create", temporary) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                let error = failure("could not write", temporary)
                close(descriptor); unlink(temporary)
                throw error
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            let error = failure("could not sync", temporary)
            close(descriptor); unlink(temporary)
            throw error
        }
        close(descriptor)
        if replace {
            guard rename(temporary, path) == 0 else {
                let error = failure("could not move the new file to", path)
                unlink(temporary)
                throw error
            }
        } else {
            let linked = link(temporary, path)
            let error = linked == 0 ? nil : failure("could not create", path)
            unlink(temporary)
            if let error { throw error }
        }
        syncFolder(folder.isEmpty ? "." : folder)
    }

    /// Creates `path` empty with mode 0600 unless it exists (for SQLite, which then gives its
    /// `-wal` and `-shm` files the database file's mode).
    public static func createIfAbsent(_ path: String) throws(Failure) {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try makeDirectory(folder) }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if descriptor >= 0 { close(descriptor); return }
        guard errno == EEXIST else { throw failure("could not create", path) }
    }

    /// Removes group and other permissions from `path` if it has any (files that an older broker
    /// created with the default mode). True when it changed the mode.
    @discardableResult
    public static func tighten(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG || (info.st_mode & S_IFMT) == S_IFDIR,
              info.st_mode & 0o077 != 0 else { return false }
        return chmod(path, mode_t(info.st_mode & 0o700)) == 0
    }

    /// The permission bits of `path` (not following a final symlink), or nil when it does not exist.
    public static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// After a rename or link: the folder's entry is durable too (best effort).
    private static func syncFolder(_ folder: String) {
        let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    private static func failure(_ what: String, _ path: String) -> Failure {
        Failure(message: "\(what) \(path): \(String(cString: strerror(errno)))")
    }
}
