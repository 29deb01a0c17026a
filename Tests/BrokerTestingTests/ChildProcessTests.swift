import BrokerTesting
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// `ChildProcess` leaves nothing running: a child that inherited a blocked SIGTERM used to outlive its
/// test (a JWKS `python3 -m http.server` with parent 1 after `make test`).
@Suite struct ChildProcessTests {
    /// Whether `pid` is still a live process (a zombie waiting for its parent is not).
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        // "pid (comm) S …": the state follows the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    static func gone(_ pid: Int32, within seconds: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !alive(pid) { return true }
            usleep(20_000)
        }
        return !alive(pid)
    }

    @Test func terminateEndsTheChildAndWhatItStartedEvenWithSIGTERMBlockedInTheParent() throws {
        // Block SIGTERM in this thread while spawning, as a test process's runtime may: the child
        // must not inherit it.
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        sigaddset(&blocked, SIGINT)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        let pipe = Pipe()
        let child: ChildProcess
        do {
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            // A shell that starts a grandchild and waits: only a group signal reaches both.
            child = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "sleep 300 & echo $!; wait"],
                                     environment: ["PATH": "/usr/bin:/bin"], stdout: .pipe(pipe))
        }
        let line = String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        let grandchild = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(child.isRunning)
        #expect(Self.alive(grandchild))
        #expect(getpgid(child.processIdentifier) == child.processIdentifier, "the child leads a process group of its own")
        #expect(getpgid(grandchild) == child.processIdentifier)

        child.terminate()
        child.waitUntilExit()
        #expect(child.terminationStatus == SIGTERM, "ended by the SIGTERM, not by anything else")
        #expect(Self.gone(grandchild), "the grandchild ended with its group")
        #expect(!Self.alive(child.processIdentifier))
    }

    @Test func aChildStartsWithAnEmptySignalMask() throws {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let result = try ChildProcess.output(URL(fileURLWithPath: "/bin/sh"), ["-c", "grep '^SigBlk' /proc/self/status"],
                                             environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == "SigBlk:\t0000000000000000")
    }
}
