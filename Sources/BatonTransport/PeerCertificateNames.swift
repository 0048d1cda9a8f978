import X509

/// The names a peer certificate carries: its DNS subjectAltNames, or its common names when it has
/// no subjectAltName extension (RFC 6125 §6.4.4: a SAN, when present, replaces the CN).
struct PeerCertificateNames {
    var all: [String]

    init?(der: [UInt8]) {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        var names: [String] = []
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for name in alternatives {
                if case .dnsName(let dns) = name { names.append(dns) }
            }
            all = names
            return
        }
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                names.append(String(describing: attribute.value))
            }
        }
        all = names
    }
}
