// `make bench`: release-mode measurements of the broker's hot path.
// Numbers are per-operation costs and ratios against a baseline measured in the
// same run; absolute values depend on the machine.
// `sharebroker-bench [decision] [payload] [log] [revocation]` runs only the parts named.
import BrokerCore
import BrokerService
import Foundation

let parts = Set(CommandLine.arguments.dropFirst())
func wanted(_ part: String) -> Bool { parts.isEmpty || parts.contains(part) }

print("ShareBroker benchmarks (release build, one core, \(ProcessInfo.processInfo.activeProcessorCount) cores available)")
if wanted("decision") {
    print("")
    for line in runDecisionBench() { print(line) }
}
if wanted("payload") {
    print("")
    for line in runPayloadBench() { print(line) }
}
if wanted("log") {
    // BENCH_LOG_RECORDS=1000000,10000000 for the sizes (10M takes a while to seed).
    let sizes = (ProcessInfo.processInfo.environment["BENCH_LOG_RECORDS"] ?? "1000000").split(separator: ",").compactMap { Int($0) }
    for size in sizes {
        print("")
        for line in try await runLogQueryBench(records: size) { print(line) }
    }
}
if wanted("revocation") {
    print("")
    for line in try await runRevocationBench() { print(line) }
}
