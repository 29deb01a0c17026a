import Foundation

/// Runs `body` repeatedly for at least `seconds` after a warm-up; returns nanoseconds per call.
func measure(seconds: Double = 0.5, _ body: () -> Void) -> Double {
    // BENCH_FIXED_ITERATIONS=N runs the body exactly N times (no warm-up, no clock): for
    // instruction counts under callgrind, which are repeatable where timings are not.
    if let fixed = ProcessInfo.processInfo.environment["BENCH_FIXED_ITERATIONS"].flatMap(Int.init) {
        for _ in 0..<fixed { body() }
        return 1
    }
    let clock = ContinuousClock()
    for _ in 0..<200 { body() }
    var iterations = 0
    var batch = 64
    let start = clock.now
    var elapsed = Duration.zero
    while elapsed < .milliseconds(Int(seconds * 1000)) {
        for _ in 0..<batch { body() }
        iterations += batch
        elapsed = clock.now - start
        if batch < 65_536 { batch *= 2 }
    }
    let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    return nanoseconds / Double(iterations)
}

/// `1234567.8` → `1,234,568`.
func grouped(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var out = ""
    for (index, character) in digits.reversed().enumerated() {
        if index > 0 && index % 3 == 0 { out.append(",") }
        out.append(character)
    }
    return String(out.reversed())
}

func fixed(_ value: Double, _ decimals: Int = 2) -> String {
    let scale = pow(10.0, Double(decimals))
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let have = text.distance(from: dot, to: text.endIndex) - 1
        if have < decimals { text += String(repeating: "0", count: decimals - have) }
    } else if decimals > 0 {
        text += "." + String(repeating: "0", count: decimals)
    }
    return text
}

func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
