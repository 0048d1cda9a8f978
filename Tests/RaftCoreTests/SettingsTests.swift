@_spi(Testing) import RaftCore
import Testing

@Suite("Settings validation")
struct SettingsTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var change: @Sendable (inout RaftSettings) -> Void
        var keys: Set<String>
        var testDescription: String { name }
    }

    static let divisibility = "heartbeat_interval/election_timeout_min/election_timeout_max"

    static let cases: [Case] = [
        Case(
            name: "heartbeat not well below the election timeout",
            change: { $0.heartbeatInterval = .milliseconds(100) }, keys: ["heartbeat_interval"]),
        Case(
            name: "election max equal to min", change: { $0.electionTimeoutMax = .milliseconds(300) },
            keys: ["election_timeout_max"]),
        Case(
            name: "election max below min", change: { $0.electionTimeoutMax = .milliseconds(200) },
            keys: ["election_timeout_max"]),
        Case(name: "zero tick", change: { $0.tickInterval = .zero }, keys: ["tick_interval"]),
        Case(name: "tick above a second", change: { $0.tickInterval = .seconds(2) }, keys: ["tick_interval"]),
        Case(
            name: "heartbeat below one tick", change: { $0.heartbeatInterval = .milliseconds(5) },
            keys: ["heartbeat_interval", divisibility]),
        Case(
            name: "timeout not a whole number of ticks", change: { $0.electionTimeoutMin = .milliseconds(305) },
            keys: [divisibility]),
        Case(
            name: "clock drift of half the election timeout", change: { $0.maxClockDrift = .milliseconds(150) },
            keys: ["max_clock_drift"]),
        Case(name: "negative clock drift", change: { $0.maxClockDrift = .milliseconds(-1) }, keys: ["max_clock_drift"]),
        Case(name: "no appends in flight", change: { $0.maxInflightMessages = 0 }, keys: ["max_inflight_messages"]),
        Case(name: "empty appends", change: { $0.maxBytesPerAppend = 0 }, keys: ["max_bytes_per_append"]),
        Case(
            name: "in-flight bytes below one append", change: { $0.maxInflightBytes = 1024 },
            keys: ["max_inflight_bytes"]),
        Case(
            name: "several problems at once",
            change: {
                $0.heartbeatInterval = .milliseconds(100)
                $0.electionTimeoutMax = .milliseconds(300)
            },
            keys: ["heartbeat_interval", "election_timeout_max"]),
    ]

    @Test("problems() names each invalid setting, and validate() throws the first", arguments: cases)
    func reportsProblems(_ c: Case) throws {
        var settings = RaftSettings()
        c.change(&settings)
        let problems = settings.problems()
        #expect(Set(problems.map(\.key)) == c.keys)
        for problem in problems {
            #expect(problem.description.contains(problem.key))
        }
        let first = try #require(problems.first)
        #expect(throws: first) { try settings.validate() }
    }

    @Test("the defaults and the test settings are valid")
    func validSettings() throws {
        #expect(RaftSettings().problems().isEmpty)
        #expect(RaftSettings.testing().problems().isEmpty)
        try RaftSettings().validate()
        #expect(RaftSettings().leaseDuration == .milliseconds(270))
        #expect(RaftSettings.testing().electionTicksMin == 10)
        #expect(RaftSettings.testing().heartbeatTicks == 2)
    }
}
