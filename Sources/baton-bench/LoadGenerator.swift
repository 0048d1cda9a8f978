import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One kind of write, sent the same way to every system: an HTTP/1.1 POST with a JSON body,
/// answered 200 once the write is committed.
struct WriteRequest: Sendable {
    var url: String
    var headers: HTTPHeaders
    var body: ByteBuffer

    /// nil when the write was committed (200); otherwise what went wrong, for the error tally:
    /// the HTTP status ("http 503") or the client error ("deadlineExceeded", "connectTimeout", …).
    func send(with client: HTTPClient, timeout: TimeAmount) async -> String? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = headers
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, timeout: timeout)
            _ = try await response.body.collect(upTo: 1 << 16)
            return response.status == .ok ? nil : "http \(response.status.code)"
        } catch let error as HTTPClientError {
            return "\(error)".split(separator: "(").first.map(String.init) ?? "\(error)"
        } catch {
            return "\(type(of: error))"
        }
    }
}

/// What one load level produced.
struct LoadResult: Codable, Sendable {
    var mode: String  // "open" or "closed"
    var offeredPerSecond: Double?  // open loop
    var clients: Int?  // closed loop
    var completed: Int
    var errors: Int
    /// Errors by kind ("http 503", "deadlineExceeded", …).
    var errorKinds: [String: Int]
    /// Open loop only: requests never sent because the run hit its time bound (overload).
    var notSent: Int
    var seconds: Double
    var throughputPerSecond: Double
    var latencyMs: LatencySummary
}

/// Drives one write endpoint at fixed offered rates (open loop) and with fixed numbers of
/// clients (closed loop). Every loop is bounded by a request count and by time.
struct LoadGenerator: Sendable {
    let client: HTTPClient
    let write: WriteRequest
    var requestTimeout: TimeAmount = .seconds(5)
    /// Open loop: requests in flight at most; later ones wait in the client, and that wait counts
    /// in their latency because latency is taken from the scheduled send time.
    var maxInFlight = 256

    /// Open loop at `rate` writes/s for `duration`: request i is due at start + i/rate whatever
    /// happened to earlier ones, and its latency runs from that due time (no coordinated omission).
    /// Requests still unsent `grace` after the last due time are counted as `notSent`.
    func openLoop(rate: Double, duration: Duration, grace: Duration = .seconds(10)) async -> LoadResult {
        let clock = ContinuousClock()
        let total = Int(
            rate * Double(duration.components.seconds) + rate * Double(duration.components.attoseconds) / 1e18)
        let interval = Duration.nanoseconds(Int64(1e9 / rate))
        let start = clock.now + .milliseconds(20)
        let cutoff = start + duration + grace
        var latencies: [Double] = []
        latencies.reserveCapacity(total)
        var errors = 0
        var errorKinds: [String: Int] = [:]
        var notSent = 0
        var lastCompletion = start
        await withTaskGroup(of: (latency: Double, error: String?, at: ContinuousClock.Instant).self) { group in
            var inFlight = 0
            func record(_ r: (latency: Double, error: String?, at: ContinuousClock.Instant)) {
                if let error = r.error {
                    errors += 1
                    errorKinds[error, default: 0] += 1
                } else {
                    latencies.append(r.latency)
                }
                if r.at > lastCompletion { lastCompletion = r.at }
            }
            for i in 0..<total {
                let due = start + interval * i
                if clock.now < due { try? await clock.sleep(until: due, tolerance: .zero) }
                while inFlight >= maxInFlight, let r = await group.next() {
                    inFlight -= 1
                    record(r)
                }
                if clock.now > cutoff {
                    notSent = total - i
                    break
                }
                let write = self.write
                let client = self.client
                let timeout = self.requestTimeout
                group.addTask {
                    let error = await write.send(with: client, timeout: timeout)
                    let now = clock.now
                    return ((now - due).milliseconds, error, now)
                }
                inFlight += 1
            }
            while let r = await group.next() { record(r) }
        }
        let seconds = (lastCompletion - start).milliseconds / 1e3
        return LoadResult(
            mode: "open", offeredPerSecond: rate, clients: nil, completed: latencies.count, errors: errors,
            errorKinds: errorKinds, notSent: notSent, seconds: seconds,
            throughputPerSecond: Double(latencies.count) / max(seconds, 1e-9),
            latencyMs: LatencySummary(latencies)
        )
    }

    /// Closed loop: `clients` workers, each sending its next write as soon as the previous one is
    /// answered, for `duration` (and at most `maxRequestsPerClient` each).
    func closedLoop(clients: Int, duration: Duration, maxRequestsPerClient: Int = 200_000) async -> LoadResult {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + duration
        var latencies: [Double] = []
        var errorKinds: [String: Int] = [:]
        var lastCompletion = start
        await withTaskGroup(of: (latencies: [Double], errors: [String: Int], last: ContinuousClock.Instant).self) {
            group in
            for _ in 0..<clients {
                let write = self.write
                let client = self.client
                let timeout = self.requestTimeout
                group.addTask {
                    var latencies: [Double] = []
                    latencies.reserveCapacity(4096)
                    var errors: [String: Int] = [:]
                    var last = start
                    var sent = 0
                    while clock.now < deadline, sent < maxRequestsPerClient {
                        let began = clock.now
                        let error = await write.send(with: client, timeout: timeout)
                        last = clock.now
                        sent += 1
                        if let error {
                            errors[error, default: 0] += 1
                            // A failing endpoint answers at once; do not spin on it.
                            try? await Task.sleep(for: .milliseconds(5))
                        } else {
                            latencies.append((last - began).milliseconds)
                        }
                    }
                    return (latencies, errors, last)
                }
            }
            for await r in group {
                latencies.append(contentsOf: r.latencies)
                errorKinds.merge(r.errors, uniquingKeysWith: +)
                if r.last > lastCompletion { lastCompletion = r.last }
            }
        }
        let seconds = (lastCompletion - start).milliseconds / 1e3
        return LoadResult(
            mode: "closed", offeredPerSecond: nil, clients: clients, completed: latencies.count,
            errors: errorKinds.values.reduce(0, +), errorKinds: errorKinds, notSent: 0,
            seconds: seconds, throughputPerSecond: Double(latencies.count) / max(seconds, 1e-9),
            latencyMs: LatencySummary(latencies)
        )
    }
}

/// The HTTP client every benchmark uses: plain HTTP/1.1, keep-alive, enough connections for the
/// largest closed-loop level. `failFast` turns off connection retries, so a request to a killed
/// replica fails at once (connection refused) instead of retrying until the connect timeout.
func makeHTTPClient(maxConnectionsPerHost: Int = 256, failFast: Bool = false) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(
        idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost
    )
    configuration.decompression = .disabled
    if failFast {
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .milliseconds(250), read: .seconds(5))
    } else {
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(10))
    }
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
}
