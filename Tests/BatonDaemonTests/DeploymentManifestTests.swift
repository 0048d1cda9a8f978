import BatonTestCluster
import Foundation
import Testing

@testable import BatonDaemon

/// The Kubernetes manifests in k8s/, rendered by kustomize and validated offline by
/// kubernetes-validate (strict, pinned Kubernetes version) through k8s/validate.sh, and the
/// configurations shipped for hosts and pods read by batond's own parser.
@Suite("deployment manifests")
struct DeploymentManifestTests {
    static func validate(root: String = FileManager.default.currentDirectoryPath) throws -> (status: Int32, output: String) {
        try ChildProcesses.run("/bin/bash", ["\(root)/k8s/validate.sh"])
    }

    @Test func everyOverlayRendersAndValidatesStrictly() throws {
        let run = try Self.validate()
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("against Kubernetes 1.33"), "\(run.output)")
        let checked = run.output.split(separator: "\n").filter { $0.hasPrefix("ok") }
        #expect(checked.count >= 30, "\(run.output)")
        for kind in ["StatefulSet", "PodDisruptionBudget", "Service", "ServiceAccount", "Certificate", "ServiceMonitor", "PrometheusRule"] {
            #expect(run.output.contains(kind), "\(kind) not validated:\n\(run.output)")
        }
    }

    /// The check could fail: a misspelt field in a copy of the tree is found and named.
    @Test func aMisspeltFieldIsRefusedWithItsPlace() throws {
        let root = NSTemporaryDirectory() + "baton-k8s-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/deploy", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "k8s", toPath: root + "/k8s")
        try FileManager.default.copyItem(atPath: "deploy/prometheus", toPath: root + "/deploy/prometheus")
        let statefulSet = root + "/k8s/base/statefulset.yaml"
        let text = try String(contentsOfFile: statefulSet, encoding: .utf8)
        #expect(text.contains("terminationGracePeriodSeconds:"))
        try text.replacingOccurrences(of: "terminationGracePeriodSeconds:", with: "terminationGracePeriodSecond:")
            .write(toFile: statefulSet, atomically: true, encoding: .utf8)
        let run = try Self.validate(root: root)
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("FAIL") && run.output.contains("terminationGracePeriodSecond"), "\(run.output)")
        #expect(run.output.contains("StatefulSet"), "\(run.output)")
    }

    /// The pod's configuration, as a StatefulSet pod reads it (its hostname and the member list
    /// from the environment), names the node by its ordinal and lists every peer by DNS name.
    @Test func thePodConfigurationParsesForEveryOrdinal() throws {
        let yaml = try String(contentsOfFile: "k8s/base/baton.yaml", encoding: .utf8)
        let statefulSet = try String(contentsOfFile: "k8s/base/statefulset.yaml", encoding: .utf8)
        // The member list the StatefulSet sets, read from the manifest itself.
        func env(_ name: String) throws -> String {
            let lines = statefulSet.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let i = try #require(lines.firstIndex { $0.contains("name: \(name)") }, "\(name) in statefulset.yaml")
            let value = try #require(lines[i + 1].split(separator: ":", maxSplits: 1).last)
            return value.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        let members = try env("BATON_CLUSTER_MEMBERS")
        let voters = try env("BATON_CLUSTER_VOTERS")
        // The secret files a pod has, here in a temporary directory with the modes batond demands.
        let secrets = NSTemporaryDirectory() + "baton-pod-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        let digest = String(repeating: "ab", count: 32)
        for (name, content) in [
            ("peer.crt", "cert"), ("peer.key", "key"), ("ca.crt", "ca"), ("fix-password", "secret"),
            ("tokens", "oncall operator sha256:\(digest)\n"),
        ] {
            try content.write(toFile: "\(secrets)/\(name)", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(secrets)/\(name)")
        }
        let podYAML = yaml.replacingOccurrences(of: "/run/baton/secrets/", with: "\(secrets)/")
            .replacingOccurrences(of: "/etc/baton/admin/tokens", with: "\(secrets)/tokens")
        for ordinal in 0..<3 {
            let config = try BatondConfiguration.parse(
                yaml: podYAML, source: "k8s/base/baton.yaml",
                environment: ["HOSTNAME": "baton-\(ordinal)", "BATON_CLUSTER_MEMBERS": members, "BATON_CLUSTER_VOTERS": voters])
            #expect(config.nodeID.rawValue == UInt64(ordinal + 1))
            #expect(config.members.count == 3)
            #expect(config.bootstrap.voters.count == 3)
            #expect(
                config.members.values.allSatisfy { $0.host.hasSuffix(".baton-peers.baton.svc.cluster.local") && $0.port == 7100 },
                "\(config.members)")
            #expect(config.tls != nil, "peers beyond loopback speak mutual TLS")
        }
    }
}
