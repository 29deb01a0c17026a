@testable import BrokerGateway
import NIOCore
import Testing

/// `RequestDeadlineStateMachine` without sockets or clocks: the times are inputs.
@Suite struct RequestDeadlineStateMachineTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func machine() -> RequestDeadlineStateMachine {
        RequestDeadlineStateMachine(headTimeout: .seconds(10), bodyTimeout: .seconds(30))
    }

    @Test func theHeadDeadlineRunsFromItsFirstByteNotFromTheLastResponse() {
        var m = machine()
        #expect(m.deadline == nil)                                   // an idle connection is the idle timeout's
        m.bytesIn(now: Self.t0)
        #expect(m.deadline == Self.t0 + .seconds(10))
        m.bytesIn(now: Self.t0 + .seconds(5))                        // more bytes do not extend it
        #expect(m.deadline == Self.t0 + .seconds(10))
        let r1 = m.timerFired(now: Self.t0 + .seconds(9))
        #expect(r1 == .none)
        let r2 = m.timerFired(now: Self.t0 + .seconds(10))
        #expect(r2 == .respondAndClose)
        #expect(m.phase == .closing)
        #expect(!m.readsOn)
    }

    @Test func aTunnelsAnswerRestartsTheHeadClock() {
        var m = machine()
        m.bytesIn(now: Self.t0)                                      // CONNECT …
        m.bytesOut()                                                 // 200 Connection Established
        #expect(m.deadline == nil)
        m.bytesIn(now: Self.t0 + .seconds(20))
        #expect(m.deadline == Self.t0 + .seconds(30))
    }

    @Test func theBodyDeadlineRunsFromTheHeadAndStopsAtTheEnd() {
        var m = machine()
        m.bytesIn(now: Self.t0)
        let r3 = m.headIn(now: Self.t0 + .seconds(1), admitted: true)
        #expect(r3 == .pass)
        #expect(m.deadline == Self.t0 + .seconds(31))
        let r4 = m.timerFired(now: Self.t0 + .seconds(31))
        #expect(r4 == .respondAndClose)

        var answered = machine()
        _ = answered.headIn(now: Self.t0, admitted: true)
        let r5 = answered.responseHeadOut()                          // body still coming: Connection: close
        #expect(r5)
        let r6 = answered.timerFired(now: Self.t0 + .seconds(30))   // mid-response: no 408
        #expect(r6 == .close)

        var whole = machine()
        _ = whole.headIn(now: Self.t0, admitted: true)
        whole.endIn()
        #expect(whole.deadline == nil)                               // the broker's own time is not timed
        let r7 = whole.responseHeadOut()
        #expect(!r7)
        let r8 = whole.responseEndOut(now: Self.t0 + .seconds(60))
        #expect(r8 == .none)
        #expect(whole.phase == .awaitingHead(deadline: nil))
    }

    @Test func aResponseBeforeTheBodysEndClosesTheConnection() {
        var m = machine()
        _ = m.headIn(now: Self.t0, admitted: true)
        let r9 = m.responseHeadOut()
        #expect(r9)
        let r10 = m.responseEndOut(now: Self.t0)
        #expect(r10 == .close)
        #expect(!m.readsOn)
        // Even when the body's end then arrives before the response's end, the announced close holds.
        var late = machine()
        _ = late.headIn(now: Self.t0, admitted: true)
        let r11 = late.responseHeadOut()
        #expect(r11)
        late.endIn()
        let r12 = late.responseEndOut(now: Self.t0)
        #expect(r12 == .close)
    }

    @Test func pipelinedRequestsAreTimedFromTheirTurn() {
        var m = machine()
        _ = m.headIn(now: Self.t0, admitted: true)
        m.endIn()
        let r13 = m.headIn(now: Self.t0, admitted: true)     // pipelined, body not all in
        #expect(r13 == .pass)
        #expect(m.deadline == nil)
        let r14 = m.responseHeadOut()
        #expect(!r14)
        let r15 = m.responseEndOut(now: Self.t0 + .seconds(40))
        #expect(r15 == .none)
        #expect(m.deadline == Self.t0 + .seconds(70))
        m.endIn()
        #expect(m.deadline == nil)
    }

    @Test func overBudgetHeadsAreRefusedAtOnceOrAfterTheOwedResponse() {
        var m = machine()
        let r16 = m.headIn(now: Self.t0, admitted: false)
        #expect(r16 == .refuse)
        #expect(m.phase == .closing)

        var pipelined = machine()
        _ = pipelined.headIn(now: Self.t0, admitted: true)
        pipelined.endIn()
        let r17 = pipelined.headIn(now: Self.t0, admitted: false)
        #expect(r17 == .drop)
        #expect(!pipelined.readsOn)
        _ = pipelined.responseHeadOut()
        let r18 = pipelined.responseEndOut(now: Self.t0)
        #expect(r18 == .refuseAndClose)
    }
}
