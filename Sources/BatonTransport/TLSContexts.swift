import NIOSSL

/// The two TLS contexts of a replica: one to accept peers, one to dial them. Both present this
/// replica's certificate, both require the other side's, and both trust only the cluster CA.
struct TLSContexts: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext

    init(_ options: MutualTLSOptions) throws {
        let authorities = try Self.certificates(option: "tls.caCertificatePath", path: options.caCertificatePath)
        let chain = try Self.certificates(option: "tls.certificatePath", path: options.certificatePath)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: options.privateKeyPath, format: .pem)
        } catch {
            throw TransportError.tlsMaterial(
                option: "tls.privateKeyPath", path: options.privateKeyPath, reason: "\(error)")
        }
        let certificateChain = chain.map { NIOSSLCertificateSource.certificate($0) }

        var server = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: certificateChain,
            privateKey: .privateKey(key),
            trustRoots: .certificates(authorities)
        )
        server.minimumTLSVersion = .tlsv13
        // Required, not just requested: a dialler without a CA-signed certificate fails the handshake.
        server.certificateVerification = .noHostnameVerification

        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv13
        client.certificateChain = certificateChain
        client.privateKey = .privateKey(key)
        client.trustRoots = .certificates(authorities)
        client.certificateVerification = .noHostnameVerification

        do {
            self.server = try NIOSSLContext(configuration: server)
            self.client = try NIOSSLContext(configuration: client)
        } catch {
            throw TransportError.tlsMaterial(
                option: "tls.certificatePath / tls.privateKeyPath",
                path: options.certificatePath,
                reason: "the certificate and key do not form a usable TLS identity (\(error))"
            )
        }
    }

    private static func certificates(option: String, path: String) throws -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TransportError.tlsMaterial(option: option, path: path, reason: "\(error)")
        }
        guard !certificates.isEmpty else {
            throw TransportError.tlsMaterial(option: option, path: path, reason: "the file holds no PEM certificate")
        }
        return certificates
    }
}
