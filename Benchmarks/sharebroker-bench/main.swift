// `make bench`: release-mode measurements of the broker's hot path.
// Numbers are per-operation costs and ratios against a baseline measured in the
// same run; absolute values depend on the machine.
import BrokerCore
import BrokerService
import Foundation

print("ShareBroker benchmarks (release build, one core, \(ProcessInfo.processInfo.activeProcessorCount) cores available)")
print("")
for line in runDecisionBench() { print(line) }
print("")
for line in runPayloadBench() { print(line) }
