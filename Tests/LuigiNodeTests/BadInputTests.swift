import LuigiBase
import LuigiClient
import LuigiCore
import LuigiNode
import LuigiWire
import Testing

/// Every bad connection is closed or refused, and the node keeps serving
/// with nothing lost (checked after each case by a write and a read-back of
/// every earlier write).
@Suite(.serialized) struct BadInputTests {
    let cluster: LocalCluster
    let port: Int

    init() async throws {
        cluster = try LocalCluster(size: 1) { config in
            config.handshakeTimeoutMillis = 300
            config.frameTimeoutMillis = 300
            config.maxHandshakes = 16
            config.maxFramePayload = 64 << 10
            config.maxPeerQueuedBytes = 1024
        }
        try await cluster.startAll()
        port = cluster.members[1]!.port
    }

    /// The node still takes writes and still holds every earlier one.
    func stillServes(_ label: String, _ written: inout [String]) throws {
        let client = try cluster.client()
        try client.put(label, Array(label.utf8))
        written.append(label)
        for key in written { #expect(try client.get(key) == Array(key.utf8), "\(key) lost after \(label)") }
    }

    @Test func everyBadConnectionIsClosedAndTheNodeStaysUp() async throws {
        var written: [String] = []
        try stillServes("start", &written)
        let credentials = try cluster.credentials()

        let badFramesBefore = cluster.counter("luigi_bad_frames_total")
        // Garbage instead of a hello.
        let garbage = try RawConnection(port: port)
        garbage.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(garbage.closedByPeer())
        try stillServes("garbage", &written)

        // A header announcing a frame over the limit, before and after the handshake.
        for authenticate in [false, true] {
            let big = try RawConnection(port: port)
            if authenticate { #expect(try big.handshake(credentials)?.kind == .welcome) }
            var header = Array(try Frame(.request, payload: []).encoded().prefix(Frame.headerSize))
            header[16] = 0; header[17] = 0; header[18] = 0; header[19] = 0x40  // 1 GiB
            big.send(header)
            #expect(big.closedByPeer(), "oversized header (authenticated: \(authenticate))")
        }
        // Before the handshake even 8 KiB is too much.
        let early = try RawConnection(port: port)
        var small = Array(try Frame(.hello, payload: []).encoded().prefix(Frame.headerSize))
        small[16] = 0; small[17] = 0x20; small[18] = 0; small[19] = 0  // 8 KiB
        early.send(small)
        #expect(early.closedByPeer(), "8 KiB hello header before the handshake")
        // Refused by the decoder (counted), not by the slow-sender timer.
        #expect(cluster.counter("luigi_bad_frames_total") == badFramesBefore + 4)
        try stillServes("oversized", &written)

        // A wrong secret: refused with a reason, then closed.
        let wrong = try RawConnection(port: port)
        let answer = try wrong.handshake(try cluster.credentials(secret: "not-the-secret-at-all"))
        #expect(answer?.kind == .refuse)
        #expect(answer.map(Handshake.reason(ofRefusal:)) == "authentication failed")
        #expect(wrong.closedByPeer())
        // A wrong cluster id: the client side already refuses the challenge.
        let otherCluster = try RawConnection(port: port)
        #expect(throws: LuigiError.self) {
            _ = try otherCluster.handshake(try ClusterCredentials(clusterId: "other", secret: testSecret))
        }
        // The client API reports a wrong secret.
        var options = Client.Options()
        options.timeoutMillis = 500
        let badClient = try Client(
            endpoints: cluster.endpoints, credentials: try cluster.credentials(secret: "wrong-secret-0123456"),
            options: options)
        #expect(throws: LuigiError.unauthenticated("the node refused this connection: authentication failed")) {
            try badClient.put("never", [1])
        }
        #expect(cluster.counter("luigi_auth_failures_total") >= 2)
        try stillServes("wrong-secret", &written)

        // Half-open: connects and says nothing; closed after the handshake timeout.
        let silent = try RawConnection(port: port)
        #expect(silent.closedByPeer(within: 3000))
        // Slow sender: authenticated, starts a frame and stalls.
        let slow = try RawConnection(port: port)
        #expect(try slow.handshake(credentials)?.kind == .welcome)
        let request = ClientRequest(id: RequestID(client: 0, seq: 1), timeoutMillis: 1000, operation: .get(key: "start"))
        slow.send(Array(try Frame(.request, group: 1, payload: request.encoded()).encoded().prefix(10)))
        #expect(slow.closedByPeer(within: 3000))
        try stillServes("slow", &written)

        // A client may not send Raft frames; a malformed request closes it.
        let impostor = try RawConnection(port: port)
        #expect(try impostor.handshake(credentials)?.kind == .welcome)
        impostor.send(Frame(.raft, group: 1, payload: [1, 2, 3]))
        #expect(impostor.closedByPeer())
        let malformed = try RawConnection(port: port)
        #expect(try malformed.handshake(credentials)?.kind == .welcome)
        malformed.send(Frame(.request, group: 1, payload: [0x4C, 0x43, 0x51, 0x01, 9]))
        #expect(malformed.closedByPeer())
        // A peer claiming this node's own id is refused; a peer's message
        // naming another sender than the connection's is dropped and counted.
        let mirror = try RawConnection(port: port)
        #expect(try mirror.handshake(credentials, role: .peer(1))?.kind == .welcome)
        #expect(mirror.closedByPeer())
        let badBefore = cluster.counter("luigi_bad_frames_total")
        let liar = try RawConnection(port: port)
        #expect(try liar.handshake(credentials, role: .peer(99))?.kind == .welcome)
        var vote = RaftMessage(kind: .vote, to: 1, from: 7, term: 1_000)
        vote.group = 1
        liar.send(Frame(.raft, group: 1, payload: vote.encoded()))
        var garbled = RaftMessage(kind: .vote, to: 1, from: 99, term: 1_000)
        garbled.group = 2
        liar.send(Frame(.raft, group: 1, payload: garbled.encoded()))
        liar.send(Frame(.raft, group: 1, payload: [0x4C, 0x52, 0x4D, 0x02, 0xFF]))
        #expect(await eventually { cluster.counter("luigi_bad_frames_total") == badBefore + 3 })
        try stillServes("impostors", &written)

        // A peer's frames are held to the frame limit like a client's; a
        // snapshot's pieces must come in order and within the message limit.
        let chunky = try RawConnection(port: port)
        #expect(try chunky.handshake(credentials, role: .peer(8))?.kind == .welcome)
        var header = Array(try Frame(.raft, group: 1, payload: []).encoded().prefix(Frame.headerSize))
        header[16] = 0; header[17] = 0; header[18] = 0x10; header[19] = 0  // 1 MiB > 64 KiB
        chunky.send(header)
        #expect(chunky.closedByPeer(), "a peer's oversized frame")
        let chunkBad = cluster.counter("luigi_bad_frames_total")
        for (total, offset) in [(UInt64(100), UInt64(5)), (UInt64(1) << 40, UInt64(0))] {
            let peer = try RawConnection(port: port)
            #expect(try peer.handshake(credentials, role: .peer(8))?.kind == .welcome)
            peer.send(Frame(.chunk, group: 1, payload: FrameChunk(transfer: 1, total: total, offset: offset, kind: .raft, bytes: [1]).encoded()))
            #expect(peer.closedByPeer(), "chunk at \(offset) of \(total)")
        }
        #expect(cluster.counter("luigi_bad_frames_total") == chunkBad + 2)
        try stillServes("bad chunks", &written)

        // A flood of connections: past the handshake limit the oldest are
        // closed; once the flood ends the node serves again.
        var flood: [RawConnection] = []
        for _ in 0..<40 { flood.append(try RawConnection(port: port)) }
        var closedEarly = 0
        for connection in flood where connection.closedByPeer(within: 100) { closedEarly += 1 }
        #expect(closedEarly >= 40 - 16, "only \(closedEarly) of 40 closed with 16 handshake slots")
        #expect(cluster.counter("luigi_connections_evicted_total") >= 40 - 16)
        flood.removeAll()
        try stillServes("flood", &written)
        await cluster.stopAll()
    }

    /// A peer's frames waiting for the host thread are bounded: past
    /// `maxPeerQueuedBytes` the connection is not read until they drain, and
    /// then reading resumes, so every frame is still stepped (here each is
    /// refused, and counted).
    @Test func aPeerFloodIsPausedThenDrainedWithNothingLost() async throws {
        var written: [String] = []
        let before = cluster.counter("luigi_bad_frames_total")
        let peer = try RawConnection(port: port)
        #expect(try peer.handshake(try cluster.credentials(), role: .peer(7))?.kind == .welcome)
        // Frames over the limit alone, then small ones that cross it together.
        let frames = 300
        for i in 0..<frames {
            let size = i < 100 ? 2048 : 300
            peer.send(Frame(.raft, group: 1, payload: [UInt8](repeating: UInt8(i & 0xFF), count: size)))
        }
        #expect(await eventually { cluster.counter("luigi_bad_frames_total") == before + frames },
                "\(cluster.counter("luigi_bad_frames_total") - before) of \(frames) frames stepped")
        #expect(cluster.counter("luigi_peer_read_pauses_total") >= 1)
        #expect(!peer.closedByPeer(within: 100))
        try stillServes("peer flood", &written)
    }

    /// Connections that never authenticate cannot lock anyone out, even
    /// while they stay open (a long handshake timeout here): each new
    /// connection closes the oldest one still in its handshake. Clients
    /// past their budget are refused after the handshake; peers never are.
    @Test func aFloodOfSilentConnectionsLocksNoOneOut() async throws {
        let guarded = try LocalCluster(size: 1) { config in
            config.handshakeTimeoutMillis = 60_000
            config.maxHandshakes = 4
            config.maxConnections = 3
        }
        try await guarded.startAll()
        let port = guarded.members[1]!.port
        let credentials = try guarded.credentials()
        var flood: [RawConnection] = []
        for _ in 0..<12 { flood.append(try RawConnection(port: port)) }
        var closed = 0
        for connection in flood where connection.closedByPeer(within: 200) { closed += 1 }
        #expect(closed >= 12 - 4, "only \(closed) of 12 silent connections closed with 4 handshake slots")
        // More silent ones keep arriving, and a client still gets in.
        for _ in 0..<12 { flood.append(try RawConnection(port: port)) }
        let client = try guarded.client(timeoutMillis: 10_000)
        try client.put("during-flood", [1])
        #expect(try client.get("during-flood") == [1])
        // The client holds one of 3 client slots: two more fit, the next is
        // refused as busy (not as a wrong secret), and peers still get in.
        var clients: [RawConnection] = []
        for _ in 0..<2 {
            let c = try RawConnection(port: port)
            #expect(try c.handshake(credentials)?.kind == .welcome)
            clients.append(c)
        }
        let extra = try RawConnection(port: port)
        let refusal = try extra.handshake(credentials)
        #expect(refusal?.kind == .refuse && refusal.map { Handshake.reason(ofRefusal: $0) }?.hasPrefix(Handshake.busyPrefix) == true)
        do {
            _ = try guarded.client(timeoutMillis: 300).get("during-flood")
            Issue.record("a client past the budget was served")
        } catch let error as LuigiError {
            guard case .timeout(let why) = error, why.contains("busy") else { Issue.record("expected busy, got \(error)"); return }
        }
        // A peer keeps at most 4 connections: a fifth closes its oldest.
        var peers: [RawConnection] = []
        for _ in 0..<5 {
            let peer = try RawConnection(port: port)
            #expect(try peer.handshake(credentials, role: .peer(7))?.kind == .welcome)
            peers.append(peer)
        }
        #expect(peers[0].closedByPeer(within: 1000))
        #expect(!peers[4].closedByPeer(within: 200))
        #expect(try client.get("during-flood") == [1])
        await guarded.stopAll()
    }

    @Test func aRetriedWriteAppliesOnceAndAnUnknownSessionIsRefused() async throws {
        let credentials = try cluster.credentials()
        try cluster.client().put("warm", [1])  // waits out the first election
        let raw = try RawConnection(port: port)
        #expect(try raw.handshake(credentials)?.kind == .welcome)
        // Register a session, then send one counter-like cas twice with one id.
        let register = ClientRequest(id: RequestID(client: 0, seq: 1), timeoutMillis: 5000, operation: .register)
        raw.send(Frame(.request, group: 1, payload: register.encoded()))
        let registered = try ClientReply(decoding: try #require(raw.frame()).payload)
        #expect(registered.status == .ok)
        var r = ByteReader(registered.result)
        let session = try r.u64le()
        let put = ClientRequest(id: RequestID(client: session, seq: 2), timeoutMillis: 5000, operation: .cas(key: "once", expected: nil, new: [7]))
        for _ in 0..<3 {
            raw.send(Frame(.request, group: 1, payload: put.encoded()))
            let reply = try ClientReply(decoding: try #require(raw.frame()).payload)
            // Applied once: every answer is "swapped", including the retries
            // (a second apply would have answered [0], not swapped).
            #expect(reply.status == .ok && reply.result == [1])
        }
        // An unknown session is refused without applying.
        let stale = ClientRequest(id: RequestID(client: 999_999, seq: 1), timeoutMillis: 5000, operation: .put(key: "never", value: [1]))
        raw.send(Frame(.request, group: 1, payload: stale.encoded()))
        #expect(try ClientReply(decoding: try #require(raw.frame()).payload).status == .expired)
        #expect(try cluster.client().get("never") == nil)
        await cluster.stopAll()
    }
}
