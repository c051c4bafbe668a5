import LuigiBase
import LuigiWire
import Testing

// The HMAC-SHA256 mutual challenge-response: challenge -> hello -> welcome (or refuse).

let secretA: [UInt8] = Array("correct horse battery staple!".utf8)
let secretB: [UInt8] = Array("correct horse battery stapl3!".utf8)

func credentials(_ cluster: String = "luigi-test", _ secret: [UInt8] = secretA) -> ClusterCredentials {
    do { return try ClusterCredentials(clusterId: cluster, secret: secret) } catch { fatalError("credentials: \(error)") }
}

/// A fixed 32-byte nonce.
func nonce(_ fill: UInt8) -> [UInt8] { [UInt8](repeating: fill, count: Handshake.nonceSize) }

/// A frame through the wire: encoded, then decoded by a fresh decoder.
func overTheWire(_ f: Frame) throws -> Frame {
    var d = try FrameDecoder()
    d.push(try f.encoded())
    guard let back = try d.next() else { throw CheckFailed(description: "frame did not decode") }
    return back
}

func reasonOf(_ outcome: HandshakeServer.Outcome) -> String? {
    if case .refused(let reason, let refusal) = outcome {
        // The refusal frame carries the same reason.
        guard refusal.kind == .refuse, refusal.group == 0, Handshake.reason(ofRefusal: refusal) == reason else {
            return "(refusal frame does not carry the reason)"
        }
        return reason
    }
    return nil
}

func isAccepted(_ outcome: HandshakeServer.Outcome) -> Bool {
    if case .accepted = outcome { return true }
    return false
}

/// The hello payload, field by field (the layout `HandshakeClient.answer` writes).
func helloPayload(cluster: String, roleBytes: [UInt8], nonce: [UInt8], proof: [UInt8]) -> [UInt8] {
    var w = ByteWriter()
    w.string(cluster)
    w.raw(roleBytes)
    w.blob(nonce)
    w.blob(proof)
    return w.bytes
}

/// Splits a hello payload into its fields.
func helloFields(_ payload: [UInt8]) throws -> (cluster: String, role: [UInt8], nonce: [UInt8], proof: [UInt8]) {
    var r = ByteReader(payload)
    let cluster = try r.utf8()
    let tag = try r.u8()
    var role = [tag]
    if tag == 1 { for _ in 0..<8 { role.append(try r.u8()) } }
    let n = try r.blob()
    let proof = try r.blob()
    try r.expectEnd("hello")
    return (cluster, role, n, proof)
}

@Suite struct HandshakeTests {
    @Test func succeedsForClientsAndPeers() {
        sweep(100, "handshake") { seed in
            var rng = SplitMix64(seed: seed)
            let node = rng.next() | 1
            let role: ConnectionRole = rng.chance(0.5) ? .client : .peer(rng.next() | 1)
            var server = HandshakeServer(credentials: credentials(), nodeId: node, nonce: rng.bytes(32))
            var client = HandshakeClient(credentials: credentials(), role: role, nonce: rng.bytes(32))
            let challenge = try overTheWire(server.challenge)
            try ensure(challenge.kind == .challenge && challenge.group == 0, "challenge \(challenge)")
            let hello = try overTheWire(try client.answer(challenge))
            try ensure(hello.kind == .hello && hello.group == 0, "hello \(hello)")
            let outcome = server.receive(hello)
            guard case .accepted(let seen, let welcome) = outcome else {
                throw CheckFailed(description: "refused: \(outcome)")
            }
            try ensure(seen == role, "server saw \(seen), connector is \(role)")
            try ensure(welcome.kind == .welcome && welcome.group == 0, "welcome \(welcome)")
            let serverNode = try client.finish(try overTheWire(welcome))
            try ensure(serverNode == node, "client learned node \(serverNode), server is \(node)")
        }
    }

    @Test func freshNoncesByDefault() throws {
        let a = Handshake.freshNonce()
        let b = Handshake.freshNonce()
        #expect(a.count == Handshake.nonceSize && b.count == Handshake.nonceSize)
        #expect(a != b)
        var server = HandshakeServer(credentials: credentials(), nodeId: 3)
        var client = HandshakeClient(credentials: credentials(), role: .peer(2))
        let outcome = server.receive(try client.answer(server.challenge))
        guard case .accepted(.peer(2), let welcome) = outcome else {
            Issue.record("refused: \(outcome)")
            return
        }
        #expect(try client.finish(welcome) == 3)
    }

    @Test func wrongSecretOnTheConnectorIsRefused() throws {
        for role in [ConnectionRole.client, .peer(7)] {
            var server = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            var client = HandshakeClient(credentials: credentials("luigi-test", secretB), role: role, nonce: nonce(2))
            let outcome = server.receive(try client.answer(server.challenge))
            #expect(reasonOf(outcome) == "authentication failed")
            // The connector learns why, as an authentication error.
            guard case .refused(_, let refusal) = outcome else { continue }
            #expect {
                _ = try client.finish(refusal)
            } throws: { error in
                guard case LuigiError.unauthenticated(let m) = error else { return false }
                return m.contains("authentication failed")
            }
        }
    }

    /// A server that does not hold the secret cannot make a welcome the
    /// connector accepts: here its welcome is exactly what a server with
    /// another secret sends for these very nonces.
    @Test func aServerWithoutTheSecretIsCaughtByFinish() throws {
        let serverNonce = nonce(0x11)
        let clientNonce = nonce(0x22)
        for role in [ConnectionRole.client, .peer(5)] {
            var impostor = HandshakeServer(credentials: credentials("luigi-test", secretB), nodeId: 9, nonce: serverNonce)
            var accomplice = HandshakeClient(credentials: credentials("luigi-test", secretB), role: role, nonce: clientNonce)
            guard case .accepted(_, let forged) = impostor.receive(try accomplice.answer(impostor.challenge)) else {
                Issue.record("the impostor pair did not complete")
                continue
            }
            var victim = HandshakeClient(credentials: credentials(), role: role, nonce: clientNonce)
            _ = try victim.answer(impostor.challenge)
            #expect {
                _ = try victim.finish(forged)
            } throws: { error in
                guard case LuigiError.unauthenticated = error else { return false }
                return true
            }

            // Other forgeries: a random proof, an empty one, the right size of zeros,
            // a welcome from another session, trailing bytes.
            var honest = HandshakeServer(credentials: credentials(), nodeId: 9, nonce: serverNonce)
            var c = HandshakeClient(credentials: credentials(), role: role, nonce: clientNonce)
            guard case .accepted(_, let real) = honest.receive(try c.answer(honest.challenge)) else {
                Issue.record("the honest pair did not complete")
                continue
            }
            #expect(try c.finish(real) == 9)
            var rng = SplitMix64(seed: 3)
            var forgeries: [Frame] = []
            for proof in [rng.bytes(32), [], [UInt8](repeating: 0, count: 32), rng.bytes(31), rng.bytes(33)] {
                var w = ByteWriter()
                w.blob(proof)
                forgeries.append(Frame(.welcome, payload: w.bytes))
            }
            forgeries.append(Frame(.welcome, payload: real.payload + [0]))
            forgeries.append(Frame(.welcome, payload: Array(real.payload.dropLast())))
            forgeries.append(Frame(.welcome, group: 1, payload: real.payload))
            forgeries.append(Frame(.challenge, payload: real.payload))
            var other = HandshakeServer(credentials: credentials(), nodeId: 9, nonce: nonce(0x33))
            var otherClient = HandshakeClient(credentials: credentials(), role: role, nonce: clientNonce)
            if case .accepted(_, let w) = other.receive(try otherClient.answer(other.challenge)) { forgeries.append(w) }
            for (i, forged) in forgeries.enumerated() {
                #expect(throws: LuigiError.self, "forgery \(i)") { try c.finish(forged) }
            }
            // Every bit flip of the real welcome.
            for bit in 0..<(real.payload.count * 8) {
                var p = real.payload
                p[bit / 8] ^= 1 << UInt8(bit % 8)
                #expect(throws: LuigiError.self, "welcome bit \(bit)") { try c.finish(Frame(.welcome, payload: p)) }
            }
        }
    }

    @Test func finishBeforeAnswerIsRefused() throws {
        var server = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        var c1 = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        guard case .accepted(_, let welcome) = server.receive(try c1.answer(server.challenge)) else {
            Issue.record("no welcome")
            return
        }
        let c2 = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        #expect(throws: LuigiError.self) { try c2.finish(welcome) }
    }

    @Test func wrongClusterIdEitherWay() throws {
        // The connector refuses a server of another cluster (same secret, even).
        let server = HandshakeServer(credentials: credentials("cluster-b"), nodeId: 1, nonce: nonce(1))
        var client = HandshakeClient(credentials: credentials("cluster-a"), role: .client, nonce: nonce(2))
        #expect {
            _ = try client.answer(server.challenge)
        } throws: { error in
            guard case LuigiError.unauthenticated(let m) = error else { return false }
            return m.contains("cluster-b")
        }

        // The server refuses a hello for another cluster: the hello is what a
        // connector of cluster-b sends to a cluster-b server with this very nonce.
        for role in [ConnectionRole.client, .peer(4)] {
            let b = HandshakeServer(credentials: credentials("cluster-b"), nodeId: 1, nonce: nonce(1))
            var cb = HandshakeClient(credentials: credentials("cluster-b"), role: role, nonce: nonce(2))
            let hello = try cb.answer(b.challenge)
            var a = HandshakeServer(credentials: credentials("cluster-a"), nodeId: 1, nonce: nonce(1))
            #expect(reasonOf(a.receive(hello)) == "wrong cluster id")
            // Rewriting only the cluster id in it does not help: the proof covers it.
            let fields = try helloFields(hello.payload)
            var a2 = HandshakeServer(credentials: credentials("cluster-a"), nodeId: 1, nonce: nonce(1))
            let rewritten = helloPayload(cluster: "cluster-a", roleBytes: fields.role, nonce: fields.nonce, proof: fields.proof)
            #expect(reasonOf(a2.receive(Frame(.hello, payload: rewritten))) == "authentication failed")
        }
    }

    @Test func aRecordedHelloIsRefusedByAnotherServerNonce() throws {
        for role in [ConnectionRole.client, .peer(8)] {
            var first = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(0xA1))
            var client = HandshakeClient(credentials: credentials(), role: role, nonce: nonce(0xC1))
            let recorded = try client.answer(first.challenge)
            #expect(isAccepted(first.receive(recorded)))
            // Replayed on a new connection: a new server nonce.
            var second = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(0xA2))
            #expect(reasonOf(second.receive(recorded)) == "authentication failed")
            // Or to another node that happens to draw the same nonce.
            var otherNode = HandshakeServer(credentials: credentials(), nodeId: 2, nonce: nonce(0xA1))
            #expect(reasonOf(otherNode.receive(recorded)) == "authentication failed")
        }
    }

    /// The proof binds the role: a client's hello cannot be turned into a
    /// peer's, nor a peer's into another peer's.
    @Test func theRoleIsCoveredByTheProof() throws {
        var client = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        let server0 = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        let fields = try helloFields(try client.answer(server0.challenge).payload)
        for role in [[1, 2, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0]] as [[UInt8]] {
            var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let p = helloPayload(cluster: fields.cluster, roleBytes: role, nonce: fields.nonce, proof: fields.proof)
            #expect(reasonOf(s.receive(Frame(.hello, payload: p))) == "authentication failed")
        }
        var peer = HandshakeClient(credentials: credentials(), role: .peer(2), nonce: nonce(2))
        let pf = try helloFields(try peer.answer(server0.challenge).payload)
        var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        let p = helloPayload(cluster: pf.cluster, roleBytes: [1, 3, 0, 0, 0, 0, 0, 0, 0], nonce: pf.nonce, proof: pf.proof)
        #expect(reasonOf(s.receive(Frame(.hello, payload: p))) == "authentication failed")
        var s2 = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        let p2 = helloPayload(cluster: pf.cluster, roleBytes: [0], nonce: pf.nonce, proof: pf.proof)
        #expect(reasonOf(s2.receive(Frame(.hello, payload: p2))) == "authentication failed")
    }

    @Test func aSecondHelloIsRefused() throws {
        var server = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        var client = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        let hello = try client.answer(server.challenge)
        #expect(isAccepted(server.receive(hello)))
        #expect(reasonOf(server.receive(hello)) == "handshake already finished")
        // After a refusal too, even when the second hello is good.
        var refusing = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        #expect(reasonOf(refusing.receive(Frame(.raft))) != nil)
        #expect(reasonOf(refusing.receive(hello)) == "handshake already finished")
        // And the client answers one challenge only.
        #expect(throws: LuigiError.self) { try client.answer(server.challenge) }
    }

    @Test func onlyAHelloOnGroupZeroIsJudged() throws {
        var client = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        let s0 = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        let hello = try client.answer(s0.challenge)
        for kind in FrameKind.allCases where kind != .hello {
            var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let reason = reasonOf(s.receive(Frame(kind, payload: hello.payload)))
            #expect(reason?.hasPrefix("expected a hello frame") == true, "\(kind): \(String(describing: reason))")
        }
        for group: UInt64 in [1, 2, .max] {
            var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let reason = reasonOf(s.receive(Frame(.hello, group: group, payload: hello.payload)))
            #expect(reason?.hasPrefix("expected a hello frame") == true, "group \(group): \(String(describing: reason))")
        }
        // The same hello on group 0 is fine (the refusals above were for kind and group only).
        var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
        #expect(isAccepted(s.receive(hello)))
    }

    @Test func malformedHellosAreRefusedWithoutTrapping() throws {
        for role in [ConnectionRole.client, .peer(6)] {
            var client = HandshakeClient(credentials: credentials(), role: role, nonce: nonce(2))
            let s0 = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let payload = try client.answer(s0.challenge).payload
            func judge(_ p: [UInt8]) -> HandshakeServer.Outcome {
                var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
                return s.receive(Frame(.hello, payload: p))
            }
            for cut in 0..<payload.count {
                let reason = reasonOf(judge(Array(payload.prefix(cut))))
                #expect(reason?.hasPrefix("malformed hello") == true, "cut \(cut): \(String(describing: reason))")
            }
            #expect(reasonOf(judge(payload + [0]))?.hasPrefix("malformed hello") == true)
            for bit in 0..<(payload.count * 8) {
                var p = payload
                p[bit / 8] ^= 1 << UInt8(bit % 8)
                #expect(!isAccepted(judge(p)), "bit \(bit) flipped, yet accepted")
            }
            #expect(isAccepted(judge(payload)))
        }
        // Field by field.
        let proof = [UInt8](repeating: 0, count: 32)
        let bad: [(String, [UInt8])] = [
            ("peer id 0", helloPayload(cluster: "luigi-test", roleBytes: [1, 0, 0, 0, 0, 0, 0, 0, 0], nonce: nonce(2), proof: proof)),
            ("role tag 2", helloPayload(cluster: "luigi-test", roleBytes: [2], nonce: nonce(2), proof: proof)),
            ("role tag 255", helloPayload(cluster: "luigi-test", roleBytes: [255], nonce: nonce(2), proof: proof)),
            ("short nonce", helloPayload(cluster: "luigi-test", roleBytes: [0], nonce: Array(nonce(2).dropLast()), proof: proof)),
            ("long nonce", helloPayload(cluster: "luigi-test", roleBytes: [0], nonce: nonce(2) + [2], proof: proof)),
            ("empty nonce", helloPayload(cluster: "luigi-test", roleBytes: [0], nonce: [], proof: proof)),
            ("invalid UTF-8", [3, 0xFF, 0xFE, 0xFD, 0] + [32] + nonce(2) + [32] + proof),
            ("huge length", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            ("non-canonical varint", [0x80, 0x00]),
        ]
        for (what, p) in bad {
            var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let reason = reasonOf(s.receive(Frame(.hello, payload: p)))
            #expect(reason?.hasPrefix("malformed hello") == true, "\(what): \(String(describing: reason))")
        }
        // Wrong-length proofs are refused as authentication failures (never accepted).
        for n in [0, 31, 33, 64] {
            var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let p = helloPayload(cluster: "luigi-test", roleBytes: [0], nonce: nonce(2), proof: [UInt8](repeating: 0, count: n))
            #expect(reasonOf(s.receive(Frame(.hello, payload: p))) == "authentication failed")
        }
    }

    @Test func randomHellosAreRefused() {
        sweep(300, "random hellos") { seed in
            var rng = SplitMix64(seed: seed)
            var s = HandshakeServer(credentials: credentials(), nodeId: 1, nonce: nonce(1))
            let p: [UInt8]
            if rng.chance(0.5) {
                p = rng.bytes(upTo: 120)
            } else {
                // Well formed, random nonce and proof.
                p = helloPayload(cluster: "luigi-test", roleBytes: rng.chance(0.5) ? [0] : [1] + rng.bytes(8),
                                 nonce: rng.bytes(32), proof: rng.bytes(32))
            }
            try ensure(!isAccepted(s.receive(Frame(.hello, payload: p))), "accepted \(p)")
        }
    }

    @Test func malformedChallengesAreRefusedByTheClient() throws {
        let server = HandshakeServer(credentials: credentials(), nodeId: 77, nonce: nonce(1))
        let payload = server.challenge.payload
        for cut in 0..<payload.count {
            var c = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
            #expect(throws: LuigiError.self, "cut \(cut)") { try c.answer(Frame(.challenge, payload: Array(payload.prefix(cut)))) }
        }
        var trailing = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        #expect(throws: LuigiError.self) { try trailing.answer(Frame(.challenge, payload: payload + [0])) }
        var grouped = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        #expect(throws: LuigiError.self) { try grouped.answer(Frame(.challenge, group: 3, payload: payload)) }
        var wrongKind = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        #expect(throws: LuigiError.self) { try wrongKind.answer(Frame(.welcome, payload: payload)) }
        // A refusal in place of the challenge carries its reason.
        var refused = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        #expect {
            _ = try refused.answer(Handshake.refusal("node is shutting down"))
        } throws: { error in
            guard case LuigiError.state(let m) = error else { return false }
            return m.contains("node is shutting down")
        }
        // A client that refused a malformed challenge still answers a good one.
        var c = HandshakeClient(credentials: credentials(), role: .client, nonce: nonce(2))
        #expect(throws: LuigiError.self) { try c.answer(Frame(.challenge, payload: Array(payload.dropLast()))) }
        var s = server
        #expect(isAccepted(s.receive(try c.answer(server.challenge))))
    }

    @Test func refusalReasons() {
        let long = String(repeating: "x", count: 500)
        #expect(Handshake.reason(ofRefusal: Handshake.refusal(long)) == String(repeating: "x", count: 200))
        #expect(Handshake.reason(ofRefusal: Handshake.refusal("no")) == "no")
        #expect(Handshake.reason(ofRefusal: Frame(.refuse, payload: [5, 1])) == "(unreadable reason)")
        #expect(Handshake.reason(ofRefusal: Frame(.refuse, payload: [2, 0xFF, 0xFF])) == "(unreadable reason)")
    }

    @Test func credentialsAreChecked() throws {
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: "c", secret: [UInt8](repeating: 1, count: 15)) }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: "c", secret: []) }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: "c", secret: "fifteen-bytes!!") }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: "", secret: secretA) }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: "a\0b", secret: secretA) }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: "\0", secret: secretA) }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: String(repeating: "c", count: 256), secret: secretA) }
        #expect(throws: LuigiError.self) { try ClusterCredentials(clusterId: String(repeating: "é", count: 128), secret: secretA) }
        #expect(try ClusterCredentials(clusterId: "c", secret: [UInt8](repeating: 1, count: 16)).clusterId == "c")
        #expect(try ClusterCredentials(clusterId: String(repeating: "c", count: 255), secret: secretA).clusterId.utf8.count == 255)
        #expect(try ClusterCredentials(clusterId: "prod-é", secret: "sixteen-bytes!!!").clusterId == "prod-é")
        // The string and byte forms of a secret are the same secret.
        var server = HandshakeServer(credentials: try ClusterCredentials(clusterId: "c", secret: "sixteen-bytes!!!"), nodeId: 1, nonce: nonce(1))
        var client = HandshakeClient(
            credentials: try ClusterCredentials(clusterId: "c", secret: Array("sixteen-bytes!!!".utf8)), role: .client, nonce: nonce(2))
        #expect(isAccepted(server.receive(try client.answer(server.challenge))))
    }
}
