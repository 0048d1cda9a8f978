import Foundation
import Testing

/// Every command the runbooks and the README tell an engineer to type is one that exists: each
/// `batonctl` / `batond` line names a subcommand the built binary has and only options that
/// subcommand accepts, and each admin HTTP path the runbooks quote is a route AdminAPI.swift
/// registers. A renamed option or route must not leave a runbook that fails at 3 a.m.
@Suite struct RunbookCommandsTests {
    static let batonctl = Result { try CommandHelp.load("batonctl") }
    static let batond = Result { try CommandHelp.load("batond") }

    static func runbooks() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "runbooks").filter { $0.hasSuffix(".md") }.sorted()
            .map { "runbooks/\($0)" }
    }

    /// What the built binary would refuse in `invocation`; empty when it accepts it.
    static func problems(with invocation: QuotedInvocation) throws -> [String] {
        try (invocation.name == "batond" ? batond : batonctl).get().problems(with: invocation)
    }

    static func problems(inMarkdown markdown: String) throws -> [String] {
        try Invocations.find(in: markdown, file: "test.md").flatMap { try problems(with: $0) }
    }

    static func adminRoutes() throws -> RouteTable {
        try RouteTable(reading: "Sources/BatonDaemon/AdminAPI.swift", server: .admin)
    }

    static func venueRoutes() throws -> RouteTable {
        try RouteTable(reading: "Sources/BatonVenue/VenueServers.swift", server: .venue)
    }

    /// The paths in `markdown` neither the admin plane serves nor (where the text is about the
    /// venue simulator) the venue does.
    static func unserved(inMarkdown markdown: String, file: String) throws -> [QuotedPath] {
        let admin = try adminRoutes()
        let venue = try venueRoutes()
        return QuotedPath.find(in: markdown, file: file).filter { quoted in
            !admin.serves(quoted.path, method: quoted.method)
                && !(quoted.aboutVenue && venue.serves(quoted.path, method: quoted.method))
        }
    }

    // MARK: - The documents

    @Test func everyQuotedCommandIsOneTheBuiltBinariesAccept() throws {
        var checked: [QuotedInvocation] = []
        for document in try Self.runbooks() + ["README.md"] {
            let text = try String(contentsOfFile: document, encoding: .utf8)
            for invocation in Invocations.find(in: text, file: document) {
                checked.append(invocation)
                for problem in try Self.problems(with: invocation) {
                    Issue.record("\(invocation.location): `\(invocation)`: \(problem)")
                }
            }
        }
        // If the extractor stops seeing the commands, this test would pass having checked nothing.
        let subcommands = Set(checked.filter { $0.name == "batonctl" }.compactMap(\.arguments.first))
        for expected in ["status", "orders", "trading", "slo", "positions", "pause", "resume", "transfer-leadership"] {
            #expect(subcommands.contains(expected), "found no quoted `batonctl \(expected)` in the runbooks or README")
        }
        #expect(checked.contains { $0.arguments.starts(with: ["orders", "resolve"]) })
        #expect(checked.contains { $0.arguments.starts(with: ["journal", "verify"]) })
    }

    @Test func everyAdminPathTheRunbooksQuoteIsARoute() throws {
        let admin = try Self.adminRoutes()
        // A changed way of registering routes must fail here, not pass with no routes read.
        for route in ["/healthz", "/metrics", "/slo", "/admin/transfer-leadership"] {
            #expect(admin.serves(route, method: nil), "read no \(route) from \(admin.source): \(admin.routes)")
        }
        #expect(try Self.venueRoutes().serves("/stats", method: "GET"))
        let served = admin.routes.map(\.description).joined(separator: ", ")
        var quoted = 0
        for document in try Self.runbooks() {
            let text = try String(contentsOfFile: document, encoding: .utf8)
            quoted += QuotedPath.find(in: text, file: document).count
            for path in try Self.unserved(inMarkdown: text, file: document) {
                Issue.record("\(path.location): `\(path)` is not a route \(admin.source) registers (it has \(served))")
            }
        }
        #expect(quoted >= 5, "found only \(quoted) quoted paths in runbooks/")
    }

    // MARK: - The checker itself: it catches what is wrong and lets placeholders through

    @Test(arguments: [
        ("`batonctl frobnicate`", "has no subcommand 'frobnicate'"),
        ("```sh\nBATON_ADMIN_TOKEN=x .build/debug/batonctl statsu --admin $URLS\n```", "no subcommand 'statsu'"),
        ("Run `batonctl status --frobnicate` first.", "does not accept --frobnicate"),
        ("`batonctl orders resolve BTN-3-41 --filed 100@1 --reason \"desk\"`", "does not accept --filed"),
        ("`batonctl orders resolve\nBTN-3-41 --reason x --not-recieved`", "does not accept --not-recieved"),
        ("`batonctl journal`", "needs a subcommand"),
        ("`batonctl --ca-file CA.pem`", "needs a subcommand"),
        ("`batonctl orders BTN-3-41`", "'BTN-3-41'"),
        ("`batonctl status extra`", "'extra'"),
        ("```sh\nbatonctl transfer-leadership    # or: --too 2\n```", "does not accept --too"),
        ("```sh\nexport X=1   # or: batonctl … --token-fil t\n```", "accepts --token-fil"),
        ("```\nbatonctl pause --reason x   # then `batonctl resum`\n```", "no subcommand 'resum'"),
        ("`batonctl help orders frob`", "no subcommand 'frob'"),
        ("`batond --config n1.yml --check-configs`", "does not accept --check-configs"),
    ])
    func aCommandTheBinaryRefusesIsCaught(markdown: String, expected: String) throws {
        let problems = try Self.problems(inMarkdown: markdown)
        #expect(problems.contains { $0.contains(expected) }, "\(markdown) → \(problems)")
    }

    @Test(arguments: [
        "`batonctl orders resolve <clordid> --not-received --reason \"…\"`",
        "`batonctl orders resolve <the order's ClOrdID> --filled QTY@AVGPX --reason …`",
        "`batonctl orders --node N --limit 5`",
        "`batonctl … --ca-file CA.pem`",
        "`BATON_ADMIN_URLS=$URLS batonctl status --timeout=10 …`",
        "`batonctl help orders resolve`",
        "`batonctl journal verify --data-dir $DIR`",
        "`batonctl status --help`",
        "`batond --config /etc/baton/n1.yml --check-config`",
        "the `batonctl` CLI and `batond`, `batonctl orders` and (`--node 1/2/3`: equal)",
        """
        ```sh
        batonctl pause --reason "lunch" | tee out   # resume with `batonctl resume`
        systemctl stop batond@n1 --frobnicate
        journalctl -u batond@* --frobnicate
        curl -s http://127.0.0.1:7201/frobnicate --frobnicate
        ```
        """,
        "```yaml\nexec: batonctl frobnicate\n```",
    ])
    func aCommandTheBinaryAcceptsPasses(markdown: String) throws {
        #expect(try Self.problems(inMarkdown: markdown) == [])
    }

    @Test func theExtractorFindsEachFormOfInvocation() {
        let markdown = """
            Run `batonctl status` or `.build/debug/batonctl orders
            --limit 5` (wrapped), and read `batonctl`.

            ```sh
            BATON_ADMIN_TOKEN=x batonctl trading --node 2    # or: --node 3
            export T=1   # or: batonctl … --token-file f
            systemctl stop batond@n1 && sudo batond --config "my config.yml"
            journalctl -u batond@*
            batonctl orders resolve BTN-3-41 \\
              --not-received --reason x
            ```

            ```yaml
            command: batonctl ignored
            ```
            """
        let found = Invocations.find(in: markdown, file: "t.md").map { "\($0.location) \($0) \($0.commentOptions)" }
        #expect(
            found == [
                "t.md:1 batonctl status []", "t.md:1 .build/debug/batonctl orders --limit 5 []",
                "t.md:5 batonctl trading --node 2 [\"--node\"]", "t.md:6 batonctl … --token-file f []",
                "t.md:7 batond --config \"my config.yml\" []",
                "t.md:9 batonctl orders resolve BTN-3-41 --not-received --reason x []",
            ])
    }

    @Test(arguments: [
        "`/admin/frobnicate`", "`POST /slo`", "`GET /admin/propose`", "`/stats`", "`/status`",
        "```sh\ncurl -s http://10.0.0.1:7201/statuz\n```",
    ])
    func aPathTheAdminPlaneDoesNotServeIsCaught(markdown: String) throws {
        #expect(QuotedPath.find(in: markdown, file: "t.md").count == 1)
        #expect(try Self.unserved(inMarkdown: markdown, file: "t.md").count == 1)
    }

    @Test(arguments: [
        "`GET /slo`", "`/admin/…`", "`/readyz` on that replica", "`/trading/tick-to-order?limit=5`",
        "The venue simulator counts them (`GET /duplicates`, and `/stats`).",
        "```sh\ncurl -s -XPOST http://10.0.0.1:7201/admin/trading/pause\n```",
    ])
    func aPathTheAdminPlaneServesPasses(markdown: String) throws {
        #expect(!QuotedPath.find(in: markdown, file: "t.md").isEmpty)
        #expect(try Self.unserved(inMarkdown: markdown, file: "t.md").map(\.description) == [])
    }

    @Test(arguments: [
        "`/var/lib/baton/nX`", "Swift in `/opt/swift`", "`batonctl journal verify --data-dir /var/lib/baton/nX`",
        "`BATON_ADMIN_URLS=http://host1:7201,http://host2:7202`", "`doc/trading.md`", "`~/.baton/oncall.token`",
    ])
    func textThatIsNoHTTPPathIsNotTakenForOne(markdown: String) {
        #expect(QuotedPath.find(in: markdown, file: "t.md").map(\.description) == [])
    }
}

// MARK: - Code in Markdown

/// A piece of a document that is code: one line of a fenced shell block, or one inline span.
struct QuotedCode: Sendable {
    var line: Int
    var text: String
    /// The paragraph or fenced block it stands in, for what the text around it is about.
    var paragraph: String
}

enum MarkdownCode {
    /// Fenced blocks read as shell lines; a YAML or Swift block is not a command line.
    static let shellFences: Set<String> = ["", "sh", "bash", "shell", "console", "zsh"]

    static func quoted(in markdown: String) -> [QuotedCode] {
        let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var quoted: [QuotedCode] = []
        var paragraph: [(number: Int, text: String)] = []
        var index = 0
        while index < lines.count {
            let trimmed = lines[index].trimmingCharacters(in: .whitespaces)
            if let fence = trimmed.wholeMatch(of: /(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*).*/) {
                quoted += spans(in: paragraph)
                paragraph = []
                let marker = String(fence.1)
                var body: [(number: Int, text: String)] = []
                index += 1
                while index < lines.count {
                    let line = lines[index].trimmingCharacters(in: .whitespaces)
                    if line.hasPrefix(marker) && line.allSatisfy({ $0 == marker.first }) { break }
                    body.append((index + 1, lines[index]))
                    index += 1
                }
                index += 1
                if shellFences.contains(fence.2.lowercased()) { quoted += shellLines(in: body) }
                continue
            }
            if trimmed.isEmpty {
                quoted += spans(in: paragraph)
                paragraph = []
            } else {
                paragraph.append((index + 1, lines[index]))
            }
            index += 1
        }
        return quoted + spans(in: paragraph)
    }

    /// A fenced block's lines, a line ending in `\` joined with the next, a `$ ` prompt dropped.
    static func shellLines(in body: [(number: Int, text: String)]) -> [QuotedCode] {
        let block = body.map(\.text).joined(separator: "\n")
        var quoted: [QuotedCode] = []
        var pending: (number: Int, text: String)?
        for (number, text) in body {
            var line = pending.map { $0.text + " " + text.trimmingCharacters(in: .whitespaces) } ?? text
            let start = pending?.number ?? number
            if line.hasSuffix("\\") {
                line.removeLast()
                pending = (start, line)
                continue
            }
            pending = nil
            var command = line.trimmingCharacters(in: .whitespaces)
            if command.hasPrefix("$ ") { command.removeFirst(2) }
            if !command.isEmpty { quoted.append(QuotedCode(line: start, text: command, paragraph: block)) }
        }
        if let pending { quoted.append(QuotedCode(line: pending.number, text: pending.text, paragraph: block)) }
        return quoted
    }

    /// The inline code spans of a paragraph (CommonMark: a run of n backticks up to the next run
    /// of exactly n; a span may wrap lines, which read as spaces).
    static func spans(in paragraph: [(number: Int, text: String)]) -> [QuotedCode] {
        guard let first = paragraph.first else { return [] }
        let text = paragraph.map(\.text).joined(separator: "\n")
        let characters = Array(text)
        func run(at index: Int) -> Int {
            var end = index
            while end < characters.count && characters[end] == "`" { end += 1 }
            return end - index
        }
        var quoted: [QuotedCode] = []
        var line = first.number
        var index = 0
        while index < characters.count {
            if characters[index] == "\n" { line += 1 }
            guard characters[index] == "`" else {
                index += 1
                continue
            }
            let length = run(at: index)
            var close = index + length
            while close < characters.count && !(characters[close] == "`" && run(at: close) == length) {
                close += characters[close] == "`" ? run(at: close) : 1
            }
            guard close < characters.count else {
                index += length
                continue
            }
            let content = String(characters[(index + length)..<close])
            quoted.append(
                QuotedCode(
                    line: line,
                    text: content.replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces),
                    paragraph: text))
            line += content.filter { $0 == "\n" }.count
            index = close + length
        }
        return quoted
    }
}

// MARK: - Shell lines

/// A shell line split the way sh would, as far as a runbook needs: words without their quotes,
/// simple commands split at `|`, `&&`, `||`, `;` and `&`, and the comment after `#`.
struct ShellLine: Sendable {
    var commands: [[String]]
    var comment: String?

    init(_ line: String) {
        let characters = Array(line)
        var commands: [[String]] = []
        var command: [String] = []
        var word = ""
        var inWord = false
        var quote: Character?
        var substitution = 0  // depth inside $( … ), kept as one word
        var comment: String?
        func endWord() {
            if inWord { command.append(word) }
            word = ""
            inWord = false
        }
        func endCommand() {
            endWord()
            if !command.isEmpty { commands.append(command) }
            command = []
        }
        var index = 0
        scan: while index < characters.count {
            let character = characters[index]
            let next = index + 1 < characters.count ? characters[index + 1] : nil
            if let open = quote {
                if character == open {
                    quote = nil
                } else if open == "\"" && character == "\\", let next {
                    word.append(next)
                    index += 1
                } else {
                    word.append(character)
                }
            } else if substitution > 0 {
                word.append(character)
                if character == "(" { substitution += 1 } else if character == ")" { substitution -= 1 }
            } else {
                switch character {
                case " ", "\t": endWord()
                case "#" where !inWord:
                    comment = String(characters[(index + 1)...]).trimmingCharacters(in: .whitespaces)
                    break scan
                case "&" where word.hasSuffix(">") || next == ">":  // 2>&1, &>file: a redirection
                    word.append(character)
                    inWord = true
                case "|", ";", "&": endCommand()
                case "<" where !inWord && (next?.isLetter ?? false) && characters[index...].contains(">"):
                    // `<the order's ClOrdID>`: a placeholder, one word, its quotes and spaces literal.
                    while characters[index] != ">" {
                        word.append(characters[index])
                        index += 1
                    }
                    word.append(">")
                    inWord = true
                case "'", "\"":
                    quote = character
                    inWord = true
                case "\\":
                    if let next { word.append(next) }
                    inWord = true
                    index += 1
                case "$" where next == "(":
                    word += "$("
                    inWord = true
                    substitution = 1
                    index += 1
                default:
                    word.append(character)
                    inWord = true
                }
            }
            index += 1
        }
        endCommand()
        self.commands = commands.map(Self.droppingRedirections)
        self.comment = comment
    }

    static func droppingRedirections(_ words: [String]) -> [String] {
        var kept: [String] = []
        var skipNext = false
        for word in words {
            if skipNext {
                skipNext = false
            } else if word.wholeMatch(of: /[0-9]*(>>?|<|&>)/) != nil {
                skipNext = true  // `> file`
            } else if word.wholeMatch(of: /[0-9]*(>>?|&>)\S+/) != nil
                || (word.hasPrefix("<") && !word.hasSuffix(">"))
            {
                continue  // `>/dev/null`, `2>&1`, `<file`
            } else {
                kept.append(word)
            }
        }
        return kept
    }
}

// MARK: - Invocations

/// One `batonctl` or `batond` command line a document quotes.
struct QuotedInvocation: Sendable, CustomStringConvertible {
    var location: String
    /// As written: `batonctl`, `.build/debug/batonctl`.
    var program: String
    var arguments: [String]
    /// Options a comment on the same line offers with it (`batonctl transfer-leadership  # or: --to 2`).
    var commentOptions: [String] = []

    var name: String { String(program.split(separator: "/").last ?? "") }

    var description: String {
        ([program] + arguments).map { $0.contains(" ") ? "\"\($0)\"" : $0 }.joined(separator: " ")
    }
}

enum Invocations {
    static let programs: Set<String> = ["batonctl", "batond"]
    /// Commands that run the next word as a command (`sudo batond …`, `watch -n 2 batonctl status`).
    static let wrappers: Set<String> = ["sudo", "env", "time", "nohup", "exec", "command", "watch"]

    static func find(in markdown: String, file: String) -> [QuotedInvocation] {
        MarkdownCode.quoted(in: markdown).flatMap { find(inShell: $0.text, at: "\(file):\($0.line)") }
    }

    /// The invocations of one shell line. Its comment is prose: the commands it quotes in
    /// backticks count, as does an alternative it offers (`# or: batonctl …`); options it names
    /// (`# or: --to 2`) must be ones the line's own command accepts.
    static func find(inShell text: String, at location: String) -> [QuotedInvocation] {
        let line = ShellLine(text)
        var found = line.commands.compactMap { invocation(in: $0, at: location) }
        guard let comment = line.comment else { return found }
        var alternative = Substring(comment)
        if alternative.hasPrefix("or:") { alternative = alternative.dropFirst(3) }
        let firstWord = alternative.split(separator: " ").first.map(String.init) ?? ""
        if programs.contains(String(firstWord.split(separator: "/").last ?? "")) {
            found += ShellLine(String(alternative)).commands.compactMap { invocation(in: $0, at: location) }
            return found
        }
        let spans = MarkdownCode.spans(in: [(number: 0, text: comment)])
        let prose = comment.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset.isMultiple(of: 2) }.map(\.element).joined(separator: " ")
        let offered = prose.matches(of: /(?:^|[\s(])(--[A-Za-z0-9][A-Za-z0-9-]*)/).map { String($0.1) }
        if found.count == 1 { found[0].commentOptions = offered }
        return found + spans.flatMap { find(inShell: $0.text, at: location) }
    }

    static func invocation(in words: [String], at location: String) -> QuotedInvocation? {
        var rest = words[...]
        var wrapped = false
        while let word = rest.first {
            if word.firstMatch(of: /^[A-Za-z_][A-Za-z0-9_]*=/) != nil || wrappers.contains(word)
                || (wrapped && (word.hasPrefix("-") || Int(word) != nil))
            {
                wrapped = wrapped || wrappers.contains(word)
                rest.removeFirst()
            } else {
                break
            }
        }
        guard let program = rest.first, programs.contains(String(program.split(separator: "/").last ?? "")) else {
            return nil
        }
        // A bare `batonctl` names the program; it is not a command line.
        guard rest.count > 1 else { return nil }
        return QuotedInvocation(location: location, program: program, arguments: Array(rest.dropFirst()))
    }
}

/// Words that stand for something the reader fills in: `<clordid>`, `$DIR`, `N`, `BTN-…`.
enum Placeholder {
    static func stands(for word: String) -> Bool {
        (word.hasPrefix("<") && word.hasSuffix(">")) || word.hasPrefix("$") || word.contains("…")
            || word.contains("...") || word.wholeMatch(of: /[A-Z][A-Z0-9_]*/) != nil
    }

    /// `…` alone: "and so on", no argument at all.
    static func isElision(_ word: String) -> Bool { word == "…" || word == "..." }
}

// MARK: - What the built binaries accept

/// What one (sub)command of a built executable accepts, as its `--help` says (so the test
/// reads the binary an engineer runs, not its source).
struct CommandHelp: Sendable {
    var program: String
    var path: [String]
    var subcommands: [String: CommandHelp]
    var defaultSubcommand: String?
    /// Each option's names (`--admin`, `-c`) and whether it takes a value.
    var options: [String: Bool]
    var argumentCount: Int
    var variadic: Bool

    var name: String { ([program] + path).joined(separator: " ") }

    /// Every option some command of this subtree accepts.
    var everyOption: [String: Bool] {
        subcommands.values.reduce(options) { $0.merging($1.everyOption) { a, _ in a } }
    }

    struct HelpFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads `program [path] --help` and, recursively, each subcommand's.
    static func load(_ program: String, path: [String] = []) throws -> CommandHelp {
        let executable = try LocalCluster.executable(program)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = path + ["--help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // An unknown subcommand with --help gets the parent's help: the usage line tells.
        let usage = "USAGE: " + ([program] + path).joined(separator: " ")
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        guard process.terminationStatus == 0,
            lines.contains(where: { $0 == usage || $0.hasPrefix(usage + " ") })
        else {
            throw HelpFailure(
                description: "`\(executable) \((path + ["--help"]).joined(separator: " "))` exited "
                    + "\(process.terminationStatus) without a '\(usage) …' line; rebuild with "
                    + "`swift build --build-tests`. Output: \(output.prefix(600))")
        }
        var help = CommandHelp(
            program: program, path: path, subcommands: [:], defaultSubcommand: nil, options: [:], argumentCount: 0,
            variadic: false)
        var children: [String] = []
        var section = ""
        for line in lines {
            if let header = line.firstMatch(of: /^([A-Z][A-Z ]*):/) {
                section = String(header.1)
                continue
            }
            // Entries are indented two spaces; their wrapped descriptions, more.
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
            let synopsis = line.dropFirst(2).components(separatedBy: "  ")[0]
            if section.hasSuffix("OPTIONS") || section.hasSuffix("FLAGS") {
                for name in synopsis.components(separatedBy: ", ").flatMap({ $0.components(separatedBy: "/") }) {
                    let option = name.split(separator: " ").first.map(String.init) ?? ""
                    if option.hasPrefix("-") { help.options[option] = synopsis.contains("<") }
                }
            } else if section == "ARGUMENTS", synopsis.hasPrefix("<") {
                help.argumentCount += 1
                help.variadic = help.variadic || synopsis.hasSuffix("...")
            } else if section == "SUBCOMMANDS",
                let entry = synopsis.wholeMatch(of: /([a-z][a-z0-9-]*)( \(default\))?/)
            {
                children.append(String(entry.1))
                if entry.2 != nil { help.defaultSubcommand = String(entry.1) }
            }
        }
        for child in children { help.subcommands[child] = try load(program, path: path + [child]) }
        return help
    }

    static func isOption(_ word: String) -> Bool { word.hasPrefix("-") && word.count > 1 && Double(word) == nil }

    static func optionName(_ word: String) -> String { String(word.split(separator: "=", maxSplits: 1)[0]) }

    func noSubcommand(_ word: String) -> String {
        "`\(name)` has no subcommand '\(word)' (it has \(subcommands.keys.sorted().joined(separator: ", ")))"
    }

    func refuses(_ option: String) -> String {
        let accepted = options.keys.filter { $0.hasPrefix("--") }.sorted().joined(separator: ", ")
        return "`\(name)` does not accept \(option) (it accepts \(accepted))"
    }

    /// What the binary would refuse in `invocation`, said for whoever fixes the document.
    func problems(with invocation: QuotedInvocation) -> [String] {
        var arguments = invocation.arguments[...]
        var command = self
        // ArgumentParser's own `help <subcommand>`: the rest must name a command.
        if arguments.first == "help" && subcommands["help"] == nil {
            for word in arguments.dropFirst() where !word.hasPrefix("-") {
                if Placeholder.stands(for: word) { return [] }
                guard let next = command.subcommands[word] else { return [command.noSubcommand(word)] }
                command = next
            }
            return []
        }
        while let word = arguments.first, !word.hasPrefix("-") {
            if let next = command.subcommands[word] {
                command = next
                arguments.removeFirst()
            } else if !command.subcommands.isEmpty && Placeholder.stands(for: word) {
                // `batonctl … --ca-file CA.pem`: any subcommand, so some subcommand must take each option.
                let options = command.everyOption
                return (arguments.dropFirst() + invocation.commentOptions).filter(Self.isOption).map(Self.optionName)
                    .filter { options[$0] == nil }.map { "no subcommand of `\(command.name)` accepts \($0)" }
            } else {
                break
            }
        }
        while !command.subcommands.isEmpty {
            guard let fallback = command.defaultSubcommand, let next = command.subcommands[fallback] else {
                if let word = arguments.first, !word.hasPrefix("-") { return [command.noSubcommand(word)] }
                if arguments.contains("--help") || arguments.contains("-h") { return [] }
                return [
                    "`\(command.name)` needs a subcommand before its options "
                        + "(one of \(command.subcommands.keys.sorted().joined(separator: ", ")))"
                ]
            }
            command = next
        }
        var problems: [String] = []
        var positionals: [String] = []
        var optionsEnded = false
        while let word = arguments.popFirst() {
            if Placeholder.isElision(word) { continue }
            if !optionsEnded && word == "--" {
                optionsEnded = true
                continue
            }
            guard !optionsEnded, Self.isOption(word) else {
                positionals.append(word)
                continue
            }
            let option = Self.optionName(word)
            guard let takesValue = command.options[option] else {
                problems.append(command.refuses(option))
                continue
            }
            if takesValue && !word.contains("=") { _ = arguments.popFirst() }
        }
        for option in invocation.commentOptions.map(Self.optionName) where command.options[option] == nil {
            problems.append(command.refuses(option) + ", which the line's comment offers")
        }
        if positionals.count > command.argumentCount && !command.variadic {
            let extra = positionals.dropFirst(command.argumentCount).map { "'\($0)'" }.joined(separator: ", ")
            let takes = command.argumentCount == 0 ? "no arguments" : "\(command.argumentCount) argument(s)"
            problems.append("`\(command.name)` takes \(takes), and the line gives it \(extra) besides")
        }
        return problems
    }
}

// MARK: - HTTP paths

/// An HTTP path a document quotes: a code span that is only a path (after its method, if any),
/// or the path of a URL with a port in code.
struct QuotedPath: Sendable, CustomStringConvertible {
    var location: String
    var method: String?
    var path: String
    /// The paragraph is about the venue simulator, whose inspection API has routes of its own.
    var aboutVenue: Bool

    var description: String { (method.map { $0 + " " } ?? "") + path }

    /// First segments of file-system paths (`/var/lib/baton/nX`, `/opt/swift`), not HTTP ones.
    static let fileSystemRoots: Set<String> = [
        "bin", "boot", "dev", "etc", "home", "lib", "mnt", "opt", "proc", "root", "run", "sbin", "srv", "sys",
        "tmp", "usr", "var",
    ]

    static func find(in markdown: String, file: String) -> [QuotedPath] {
        var found: [QuotedPath] = []
        for code in MarkdownCode.quoted(in: markdown) {
            let aboutVenue = code.paragraph.lowercased().contains("venue simulator")
            func add(_ method: Substring?, _ raw: Substring) {
                let path = String(raw.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
                let first = path.split(separator: "/").first.map(String.init) ?? ""
                guard path != "/", !fileSystemRoots.contains(first) else { return }
                found.append(
                    QuotedPath(
                        location: "\(file):\(code.line)", method: method.map(String.init), path: path,
                        aboutVenue: aboutVenue))
            }
            if let whole = code.text.wholeMatch(of: /(?:(GET|POST|PUT|PATCH|DELETE|HEAD)\s+)?(\/[^\s`,;)]*)/) {
                add(whole.1, whole.2)
            }
            for url in code.text.matches(of: /https?:\/\/[^\s\/,'"]+:[0-9]+(\/[^\s,'"]*)/) { add(nil, url.1) }
        }
        return found
    }
}

/// The routes a server's source registers, read from its registration calls.
struct RouteTable: Sendable {
    struct Route: Sendable, CustomStringConvertible {
        var method: String
        var path: String
        var description: String { "\(method) \(path)" }
    }

    enum Server { case admin, venue }

    var source: String
    var routes: [Route]

    init(reading source: String, server: Server) throws {
        self.source = source
        let text = try String(contentsOfFile: source, encoding: .utf8)
        switch server {
        case .admin:
            // `router.get("/healthz")`, and AdminAPI's `view(router, "/slo")` (GET, a viewer's)
            // and `action(router, "/admin/…")` (POST, audited).
            routes = text.matches(
                of: /(?:router\.(get|post|put|patch|delete|head)|\b(view|action))\(\s*(?:router\s*,\s*)?"(\/[^"]*)"/
            ).map { match in
                let verb = match.1.map(String.init) ?? (match.2 == "view" ? "get" : "post")
                return Route(method: verb.uppercased(), path: String(match.3))
            }
        case .venue:
            routes = text.matches(
                of: /\b(?:router|webSocketRouter)\.(get|post|put|patch|delete|head|ws)\(\s*"(\/[^"]*)"/
            ).map { Route(method: $0.1 == "ws" ? "GET" : $0.1.uppercased(), path: String($0.2)) }
        }
    }

    /// Whether some route answers `path` (with `method`, if the document gives one). `…` or
    /// `<id>` in the quoted path stands for any segment; a trailing `…` for any rest.
    func serves(_ path: String, method: String?) -> Bool {
        let quoted = path.split(separator: "/").map(String.init)
        return routes.contains { route in
            if let method, method != route.method { return false }
            let segments = route.path.split(separator: "/").map(String.init)
            for (index, segment) in quoted.enumerated() {
                if Placeholder.isElision(segment) && index == quoted.count - 1 { return segments.count >= index + 1 }
                guard index < segments.count else { return false }
                let pattern = segments[index]
                if pattern == "**" { return true }
                let matches =
                    pattern == segment || pattern == "*" || pattern.hasPrefix(":") || pattern.hasPrefix("{")
                    || segment.contains("…") || (segment.hasPrefix("<") && segment.hasSuffix(">"))
                if !matches { return false }
            }
            return quoted.count == segments.count
        }
    }
}
