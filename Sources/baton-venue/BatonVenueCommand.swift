import ArgumentParser
import NIOSSL
import BatonMarketData
import BatonVenue
import Foundation
import Logging
import ServiceLifecycle

@main
struct BatonVenueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-venue",
        abstract: "The venue simulator: a FIX 4.4 acceptor with a matching model, and a seeded market feed.",
        discussion: """
            Listens on loopback by default. Prints one line to stdout once listening:
              baton-venue listening fix=127.0.0.1:9878 http=127.0.0.1:9880
            HTTP: ws://HOST:HTTP-PORT/feed, GET /orders /duplicates /stats /healthz,
            POST /admin/feed/pause {"seconds": 2.5}, POST /admin/feed/resume.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "FIX acceptor port (0 picks a free port).") var fixPort = 9878
    @Option(help: "HTTP port for the feed and inspection API (0 picks a free port).") var httpPort = 9880
    @Option(help: "The venue's CompID (SenderCompID of its messages).") var compID = "VENUE"
    @Option(help: "Seed of the market walk and fill decisions.") var seed: UInt64 = 42
    @Option(help: "Comma-separated symbols.") var symbols = "AAPL,MSFT,EURUSD"
    @Option(help: "Comma-separated SYMBOL=PRICE start prices; others start at 100.") var startPrices = ""
    @Option(help: "Ticks per second over all symbols.") var tickRate = 1000
    @Option(help: "Slippage against the taker, in basis points.") var slippageBps: Int64 = 1
    @Option(help: "Probability in [0, 1] that an order fills in slices.") var partialFillProbability = 0.0
    @Option(help: "Slices of a partially filled order.") var partialFillSlices = 3
    @Option(help: "Largest price step per tick, in basis points.") var volatilityBps: Int64 = 2
    @Option(help: "Refuse NewOrderSingles whose SendingTime is older than this many ms with an ExecutionReport (0: no limit, the default; brokers check SendingTime at the session level instead).")
    var maxOrderAgeMs: Int64 = 0
    @Option(help: "SendingTime tolerance of every FIX message, in seconds: beyond it a session Reject and a Logout, as QuickFIX's MaxLatency (0: not checked).")
    var sendingTimeToleranceS = 120
    @Option(help: "Where ClOrdIDs are unique and visible: session (as at brokers: lookups and reports stay on the session that sent the order) or account (lenient: one namespace, reports go to the last session that asked).")
    var clordidScope = "session"
    @Option(help: "Order gateway latency: a NewOrderSingle reaches matching this many ms after receipt, while status requests are answered at once (0: none).")
    var orderLatencyMs: Int64 = 0
    @Flag(help: "Answer OrderStatusRequests with a BusinessMessageReject, as brokers without status lookups do.")
    var rejectStatusRequests = false
    @Flag(help: "Answer ResendRequests with gap fills only, as brokers that do not replay execution reports do.")
    var gapFillResends = false
    @Option(help: "PEM certificate (chain) to speak FIX over TLS (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "Keep the book, the sessions' sequence numbers and their sent messages in this file, so a restart comes back with them (as a broker's does); without it everything is in memory.")
    var stateFile: String?
    @Option(help: "File of COMPID:PASSWORD lines: each session must log on with its Password(554).")
    var passwordsFile: String?
    @Option(help: "Comma-separated SenderCompIDs allowed to log on (default: any).") var sessions: String?
    @Flag(help: "Serve the market feed only, without the FIX acceptor (a backup feed).") var feedOnly = false
    @Option(help: "Log format on stderr: text or json.") var logFormat = "text"
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func venueConfiguration() throws -> VenueConfiguration {
        let symbolList = symbols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !symbolList.isEmpty, symbolList.allSatisfy({ !$0.isEmpty }) else {
            throw ValidationError("--symbols \"\(symbols)\": give at least one symbol, comma-separated, none empty")
        }
        for symbol in symbolList where symbol.contains(where: { $0 == "\n" || $0 == " " }) {
            throw ValidationError("--symbols: \"\(symbol)\" contains whitespace, which the feed format cannot carry")
        }
        guard Set(symbolList).count == symbolList.count else {
            throw ValidationError("--symbols \"\(symbols)\": a symbol is listed twice")
        }
        var prices: [String: Int64] = [:]
        for entry in startPrices.split(separator: ",") {
            let parts = entry.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw ValidationError("--start-prices: \"\(entry)\" is not SYMBOL=PRICE (e.g. AAPL=187.25)")
            }
            let symbol = String(parts[0]).trimmingCharacters(in: .whitespaces)
            guard symbolList.contains(symbol) else {
                throw ValidationError(
                    "--start-prices: \(symbol) is not one of --symbols \(symbolList.joined(separator: ","))")
            }
            guard let price = TickCodec.parsePrice(String(parts[1])), price > 0 else {
                throw ValidationError(
                    "--start-prices: \(symbol)=\(parts[1]) is not a positive price with at most 4 decimals")
            }
            prices[symbol] = price
        }
        guard (0...65535).contains(fixPort) else { throw ValidationError("--fix-port \(fixPort) is not a TCP port") }
        guard (0...65535).contains(httpPort) else {
            throw ValidationError("--http-port \(httpPort) is not a TCP port")
        }
        guard !compID.isEmpty else { throw ValidationError("--comp-id must not be empty") }
        guard (1...1_000_000).contains(tickRate) else {
            throw ValidationError("--tick-rate \(tickRate): ticks per second must be between 1 and 1000000")
        }
        guard (0...1000).contains(slippageBps) else {
            throw ValidationError("--slippage-bps \(slippageBps) must be between 0 and 1000")
        }
        guard partialFillProbability.isFinite, (0...1).contains(partialFillProbability) else {
            throw ValidationError("--partial-fill-probability \(partialFillProbability) must be between 0 and 1")
        }
        guard (1...1000).contains(partialFillSlices) else {
            throw ValidationError("--partial-fill-slices \(partialFillSlices) must be between 1 and 1000")
        }
        guard (0...1000).contains(volatilityBps) else {
            throw ValidationError("--volatility-bps \(volatilityBps) must be between 0 and 1000")
        }
        var allowed: Set<String>?
        if let sessions {
            let list = sessions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard !list.isEmpty else { throw ValidationError("--sessions \"\(sessions)\": list at least one CompID") }
            allowed = Set(list)
        }
        guard ["text", "json"].contains(logFormat) else {
            throw ValidationError("--log-format \(logFormat): use text or json")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel): use trace, debug, info, notice, warning, error or critical")
        }
        guard (0...3_600_000).contains(maxOrderAgeMs) else {
            throw ValidationError("--max-order-age-ms \(maxOrderAgeMs) must be between 0 (no limit) and 3600000")
        }
        var configuration = VenueConfiguration(
            host: host, fixPort: fixPort, httpPort: httpPort, compID: compID, seed: seed, symbols: symbolList,
            startPrices: prices, ticksPerSecond: tickRate, slippageBps: slippageBps,
            partialFillProbability: partialFillProbability, partialFillSlices: partialFillSlices,
            volatilityBps: volatilityBps, sessions: allowed, feedOnly: feedOnly)
        configuration.maxOrderAgeMilliseconds = maxOrderAgeMs
        guard (0...86_400).contains(sendingTimeToleranceS) else {
            throw ValidationError("--sending-time-tolerance-s \(sendingTimeToleranceS) must be between 0 (not checked) and 86400")
        }
        configuration.sendingTimeToleranceSeconds = sendingTimeToleranceS == 0 ? nil : sendingTimeToleranceS
        guard let scope = MatchingEngine.ClOrdIDScope(rawValue: clordidScope) else {
            throw ValidationError("--clordid-scope \(clordidScope): use session or account")
        }
        configuration.clOrdIDScope = scope
        guard (0...60_000).contains(orderLatencyMs) else {
            throw ValidationError("--order-latency-ms \(orderLatencyMs) must be between 0 and 60000")
        }
        configuration.orderLatencyMilliseconds = orderLatencyMs
        configuration.rejectsStatusRequests = rejectStatusRequests
        configuration.resendsApplicationMessages = !gapFillResends
        configuration.stateFile = stateFile
        if let passwordsFile {
            let text: String
            do {
                text = try String(contentsOfFile: passwordsFile, encoding: .utf8)
            } catch {
                throw ValidationError("--passwords-file \(passwordsFile): cannot read it: \(error.localizedDescription)")
            }
            var passwords: [String: String] = [:]
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let colon = trimmed.firstIndex(of: ":"), colon != trimmed.startIndex,
                    trimmed.index(after: colon) != trimmed.endIndex
                else {
                    throw ValidationError("--passwords-file \(passwordsFile) line \(number + 1): expected COMPID:PASSWORD")
                }
                passwords[String(trimmed[..<colon])] = String(trimmed[trimmed.index(after: colon)...])
            }
            configuration.passwords = passwords
        }
        return configuration
    }

    func validate() throws {
        _ = try venueConfiguration()
    }

    func run() async throws {
        let configuration = try venueConfiguration()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "baton-venue")
        let venue: Venue
        do {
            venue = try Venue(configuration: configuration, logger: logger, restoringState: true)
        } catch {
            throw ValidationError("\(error)")
        }

        var services: [any Service] = [VenueClock(venue: venue, runsFIXTimers: !configuration.feedOnly)]
        var fixAddress = ""
        if !configuration.feedOnly {
            let acceptor: FIXAcceptor
            var tls: NIOSSLContext?
            switch (tlsCert, tlsKey) {
            case (let cert?, let key?):
                do { tls = try FIXAcceptor.tlsContext(certificatePath: cert, keyPath: key) } catch {
                    throw ValidationError("\(error)")
                }
            case (nil, nil): break
            default: throw ValidationError("--tls-cert and --tls-key go together")
            }
            do {
                acceptor = try await FIXAcceptor.bind(
                    host: configuration.host, port: configuration.fixPort, venue: venue, logger: logger, tls: tls)
            } catch {
                throw ValidationError(
                    "--fix-port \(configuration.fixPort): cannot listen on \(configuration.host): \(error)")
            }
            services.append(acceptor)
            fixAddress = "fix=\(configuration.host):\(acceptor.port) "
        }
        let host = configuration.host
        let application = buildVenueApplication(
            venue: venue, host: host, port: configuration.httpPort, logger: logger
        ) { [fixAddress] httpPort in
            // Unbuffered, so a parent reading the pipe sees the line at once.
            FileHandle.standardOutput.write(Data("baton-venue listening \(fixAddress)http=\(host):\(httpPort)\n".utf8))
        }
        services.append(application)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

/// One JSON object per line on stderr, for log collectors.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        let explicit = event.metadata
        var object: [String: String] = [
            "time": ISO8601DateFormatter.string(
                from: Date(), timeZone: TimeZone(identifier: "UTC") ?? .current,
                formatOptions: [.withInternetDateTime, .withFractionalSeconds]),
            "level": level.rawValue, "logger": label, "message": message.description,
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) {
            object[key] = value.description
        }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(UInt8(ascii: "\n"))
        FileHandle.standardError.write(data)
    }
}
