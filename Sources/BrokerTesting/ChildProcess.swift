import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process for the tests (the broker, curl, Python), started with `posix_spawn`.
///
/// Not Foundation's `Process`: on Linux its `run()` scans `/proc/self/fd` with a 256-byte
/// over-read of each `dirent` (swift-corelibs-foundation PR #5472, fixed after Swift 6.3.1),
/// which crashes the test process once it holds about a thousand descriptors — the parallel
/// suite does, with every broker's simulators. Here the child closes everything above stderr
/// itself (`posix_spawn_file_actions_addclosefrom_np`, glibc ≥ 2.34) and nothing is scanned.
/// The API is the part of `Process` the tests use.
///
/// The child starts with an empty signal mask and default handlers for the signals that end it
/// (the test process blocks or ignores some of them, and a child inherits both across exec: a
/// `python3 -m http.server` that inherited a blocked SIGTERM outlived its test), and leads a
/// process group of its own, so `terminate()` ends it and whatever it started.
public final class ChildProcess: @unchecked Sendable {
    public let processIdentifier: Int32
    private let status = NSLock()
    private var exitStatus: Int32?

    /// Where a standard stream goes: a pipe's write end, a file, or `/dev/null`.
    public enum Output {
        case pipe(Pipe)
        case file(FileHandle)
        case null
    }

    /// Starts `executable` with `arguments` (not including argv[0]), exactly `environment`, in
    /// `directory`; stdin is `/dev/null`.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String], directory: URL? = nil,
                stdout: Output = .null, stderr: Output = .null) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (fd, output) in [(Int32(1), stdout), (2, stderr)] {
            switch output {
            case .pipe(let pipe): posix_spawn_file_actions_adddup2(&actions, pipe.fileHandleForWriting.fileDescriptor, fd)
            case .file(let handle): posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, fd)
            case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            }
        }
        if let directory {
            guard Self.addChdir(&actions, directory.path) == 0 else { throw Self.error("posix_spawn_file_actions_addchdir_np") }
        }
        guard Self.addClosefrom(&actions, 3) == 0 else { throw Self.error("posix_spawn_file_actions_addclosefrom_np") }
        let argv = ([executable.path] + arguments).map { strdup($0) }
        let envp = environment.map { strdup($0.key + "=" + $0.value) }
        defer { for pointer in argv + envp { free(pointer) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)   // a group of its own, led by the child
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var pid: pid_t = 0
        let rc = (argv + [nil]).withUnsafeBufferPointer { args in
            (envp + [nil]).withUnsafeBufferPointer { env in
                posix_spawn(&pid, executable.path, &actions, &attributes, UnsafeMutablePointer(mutating: args.baseAddress!),
                            UnsafeMutablePointer(mutating: env.baseAddress!))
            }
        }
        guard rc == 0 else { throw Self.error("posix_spawn \(executable.lastPathComponent)", code: rc) }
        processIdentifier = pid
        // The parent's copies of the write ends: closed so that a reader sees EOF when the child exits.
        for output in [stdout, stderr] { if case .pipe(let pipe) = output { try? pipe.fileHandleForWriting.close() } }
    }

    /// Runs to the end; returns the exit status and what it wrote to stdout (and stderr, if `mergingStderr`).
    public static func output(_ executable: URL, _ arguments: [String], environment: [String: String],
                              directory: URL? = nil, mergingStderr: Bool = false) throws -> (status: Int32, output: String) {
        let pipe = Pipe()
        let child = try ChildProcess(executable, arguments, environment: environment, directory: directory,
                                     stdout: .pipe(pipe), stderr: mergingStderr ? .pipe(pipe) : .null)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        return (child.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// SIGTERM to the child's process group: the child and everything it started.
    public func terminate() { signalGroup(SIGTERM) }
    /// SIGINT to the child's process group.
    public func interrupt() { signalGroup(SIGINT) }
    /// A signal to the child alone (a test that kills the broker with SIGKILL means the broker).
    public func signal(_ value: Int32) { kill(processIdentifier, value) }

    /// The group is the child's pid while the child lives (or is unreaped); once it was reaped, the
    /// pid may be reused, so nothing is sent.
    private func signalGroup(_ value: Int32) {
        status.lock()
        defer { status.unlock() }
        guard exitStatus == nil else { return }
        if kill(-processIdentifier, value) != 0 { kill(processIdentifier, value) }
    }

    /// Blocks until the child has exited (call it off the cooperative pool).
    public func waitUntilExit() {
        status.lock()
        defer { status.unlock() }
        guard exitStatus == nil else { return }
        var raw: Int32 = 0
        while waitpid(processIdentifier, &raw, 0) == -1 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, WTERMSIG (the C macros are not imported).
        exitStatus = raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    /// The exit code, or the signal that ended it; only after `waitUntilExit()`.
    public var terminationStatus: Int32 { status.lock(); defer { status.unlock() }; return exitStatus ?? -1 }

    public var isRunning: Bool {
        status.lock()
        defer { status.unlock() }
        guard exitStatus == nil else { return false }
        var raw: Int32 = 0
        let rc = waitpid(processIdentifier, &raw, WNOHANG)
        if rc == processIdentifier { exitStatus = raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f; return false }
        return rc == 0
    }

    static func error(_ what: String, code: Int32 = errno) -> NSError {
        NSError(domain: NSPOSIXErrorDomain, code: Int(code), userInfo: [NSLocalizedDescriptionKey: "\(what) failed: \(String(cString: strerror(code)))"])
    }

    // glibc's GNU extensions, looked up at run time (Swift's Glibc module does not define _GNU_SOURCE).
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    private static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) -> Int32 {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return -1 }
        return unsafeBitCast(symbol, to: AddChdir.self)(actions, path)
    }

    private static func addClosefrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32 {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return -1 }
        return unsafeBitCast(symbol, to: AddClosefrom.self)(actions, from)
    }
}
