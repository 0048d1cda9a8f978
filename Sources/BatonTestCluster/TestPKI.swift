public import Foundation

/// A throwaway CA and certificates made with the openssl CLI, in a directory of their own: the
/// one way tests make TLS material (peer mTLS, the venue's FIX over TLS, the admin plane's HTTPS).
public struct TestPKI: Sendable {
    public let directory: URL

    /// A new, empty directory under the temporary directory (`baton-pki-*`).
    public init() throws {
        try self.init(directory: FileManager.default.temporaryDirectory.appendingPathComponent("baton-pki-\(UUID().uuidString)"))
    }

    /// Material kept in `directory` (created if missing), e.g. a cluster's own directory.
    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// `<name>.pem` (a self-signed CA certificate) and `<name>.key`.
    public func makeCA(_ name: String) throws {
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", path("\(name).key"), "-out", path("\(name).pem"), "-days", "2", "-subj", "/CN=\(name)",
        ])
        try restrict(path("\(name).key"))
    }

    /// `<name>.pem` / `<name>.key` (mode 0600, as batond requires of a key), signed by `ca`, with
    /// CN `name` and these subjectAltNames (`IP:127.0.0.1`, `DNS:node-1` …).
    public func makeCertificate(
        _ name: String, ca: String, subjectAltNames: [String],
        extendedKeyUsage: String = "serverAuth,clientAuth"
    ) throws {
        let extensions = path("\(name).ext")
        try """
        basicConstraints=critical,CA:FALSE
        keyUsage=critical,digitalSignature
        extendedKeyUsage=\(extendedKeyUsage)
        subjectAltName=\(subjectAltNames.joined(separator: ","))
        """.write(toFile: extensions, atomically: true, encoding: .utf8)
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
        ])
        try restrict(path("\(name).key"))
        try openssl([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
            "-CAcreateserial", "-out", path("\(name).pem"), "-days", "2", "-extfile", extensions,
        ])
    }

    public func remove() { try? FileManager.default.removeItem(at: directory) }

    private func restrict(_ key: String) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw OpenSSLFailed(arguments: arguments, output: String(decoding: message, as: UTF8.self))
        }
    }

    public struct OpenSSLFailed: Error, CustomStringConvertible {
        public var arguments: [String]
        public var output: String
        public var description: String { "openssl \(arguments.joined(separator: " ")) failed: \(output)" }
    }
}
