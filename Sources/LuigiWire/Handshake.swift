import Crypto
import LuigiBase

/// What every node and client of one cluster shares: the cluster's id (not
/// secret, sent in the clear) and its secret (never sent).
public struct ClusterCredentials: Sendable {
    public let clusterId: String
    let key: SymmetricKey

    /// Throws when the id is empty, over 255 bytes or holds a NUL, or when
    /// the secret is shorter than 16 bytes.
    public init(clusterId: String, secret: [UInt8]) throws {
        guard !clusterId.isEmpty, clusterId.utf8.count <= 255, !clusterId.utf8.contains(0) else {
            throw LuigiError.invalidArgument("cluster id must be 1...255 bytes of UTF-8 without NUL")
        }
        guard secret.count >= 16 else {
            throw LuigiError.invalidArgument("cluster secret must be at least 16 bytes (got \(secret.count))")
        }
        self.clusterId = clusterId
        self.key = SymmetricKey(data: secret)
    }

    public init(clusterId: String, secret: String) throws {
        try self.init(clusterId: clusterId, secret: Array(secret.utf8))
    }
}

/// Who opened a connection.
public enum ConnectionRole: Equatable, Sendable {
    /// Another node of the cluster, with its node id.
    case peer(UInt64)
    case client
}

/// The mutual challenge–response that opens every connection. Both sides
/// prove they hold the cluster secret by an HMAC-SHA256 over both fresh
/// nonces, the cluster id and the connector's role, so nothing secret
/// crosses the wire and a recorded exchange cannot be replayed (the other
/// side's nonce is new each time):
///
///     server -> challenge: cluster id, server nonce (32 bytes), server node id
///     connector -> hello:  cluster id, role, connector nonce, proof
///     server -> welcome:   server proof      (or refuse: reason, then close;
///                                             "busy: ..." after a valid hello)
///
/// Sans-I/O: the sides take and return frames; the caller moves them.
public enum Handshake {
    public static let nonceSize = 32
    static let label: [UInt8] = Array("luigi-auth-v1".utf8)

    /// A fresh nonce from the system's secure generator.
    public static func freshNonce() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<nonceSize).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    static func proof(
        _ credentials: ClusterCredentials, direction: UInt8, serverNonce: [UInt8], connectorNonce: [UInt8],
        role: ConnectionRole, serverNode: UInt64
    ) -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        w.raw(label)
        w.u8(direction)
        w.string(credentials.clusterId)
        w.blob(serverNonce)
        w.blob(connectorNonce)
        writeRole(role, to: &w)
        w.u64le(serverNode)
        return Array(HMAC<SHA256>.authenticationCode(for: w.bytes, using: credentials.key))
    }

    static func writeRole(_ role: ConnectionRole, to w: inout ByteWriter) {
        switch role {
        case .client: w.u8(0)
        case .peer(let id): w.u8(1); w.u64le(id)
        }
    }

    static func readRole(_ r: inout ByteReader) throws -> ConnectionRole {
        switch try r.u8() {
        case 0: return .client
        case 1:
            let id = try r.u64le()
            guard id != 0 else { throw LuigiError.decode("peer node id 0") }
            return .peer(id)
        case let tag: throw LuigiError.decode("unknown connection role \(tag)")
        }
    }

    static func readNonce(_ r: inout ByteReader) throws -> [UInt8] {
        let nonce = try r.blob()
        guard nonce.count == nonceSize else { throw LuigiError.decode("nonce of \(nonce.count) bytes, not \(nonceSize)") }
        return nonce
    }

    /// Constant-time comparison: how long it takes says nothing about where
    /// the proofs differ.
    static func sameProof(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// A refuse frame carrying `reason` (cut to 200 characters).
    public static func refusal(_ reason: String) -> Frame {
        var w = ByteWriter()
        w.string(String(reason.prefix(200)))
        return Frame(.refuse, payload: w.bytes)
    }

    /// A refusal's reason starts with this when the node is at a limit (too
    /// many client connections), not doubting the connector: it comes only
    /// after a valid hello, and the connector may try again or elsewhere.
    public static let busyPrefix = "busy: "

    /// A refusal for a connector whose hello was valid, at a limit.
    public static func busy(_ why: String) -> Frame { refusal(busyPrefix + why) }

    /// The reason a `refuse` frame carries (or a placeholder if it is malformed).
    public static func reason(ofRefusal frame: Frame) -> String {
        var r = ByteReader(frame.payload)
        return (try? r.utf8()) ?? "(unreadable reason)"
    }
}

/// The accepting side of the handshake.
public struct HandshakeServer: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// Send `welcome`; the connection now belongs to `role`.
        case accepted(role: ConnectionRole, welcome: Frame)
        /// Send `refusal`, then close.
        case refused(reason: String, refusal: Frame)
    }

    let credentials: ClusterCredentials
    let nodeId: UInt64
    let nonce: [UInt8]
    private var done = false

    /// `nonce` must be fresh for every connection (`Handshake.freshNonce()`;
    /// tests pass their own).
    public init(credentials: ClusterCredentials, nodeId: UInt64, nonce: [UInt8] = Handshake.freshNonce()) {
        self.credentials = credentials
        self.nodeId = nodeId
        self.nonce = nonce
    }

    /// The first frame of the connection.
    public var challenge: Frame {
        var w = ByteWriter(capacity: 80)
        w.string(credentials.clusterId)
        w.blob(nonce)
        w.u64le(nodeId)
        return Frame(.challenge, payload: w.bytes)
    }

    /// Judges the connector's first frame. Anything but a well-formed hello
    /// for this cluster with a valid proof is refused; so is a second hello.
    public mutating func receive(_ frame: Frame) -> Outcome {
        func refuse(_ reason: String) -> Outcome { .refused(reason: reason, refusal: Handshake.refusal(reason)) }
        guard !done else { return refuse("handshake already finished") }
        done = true
        guard frame.kind == .hello, frame.group == 0 else {
            return refuse("expected a hello frame, got \(frame.kind)")
        }
        do {
            var r = ByteReader(frame.payload)
            let cluster = try r.utf8()
            let role = try Handshake.readRole(&r)
            let theirNonce = try Handshake.readNonce(&r)
            let proof = try r.blob()
            try r.expectEnd("hello")
            guard cluster == credentials.clusterId else {
                return refuse("wrong cluster id")
            }
            let expected = Handshake.proof(
                credentials, direction: 1, serverNonce: nonce, connectorNonce: theirNonce, role: role, serverNode: nodeId)
            guard Handshake.sameProof(proof, expected) else { return refuse("authentication failed") }
            let answer = Handshake.proof(
                credentials, direction: 2, serverNonce: nonce, connectorNonce: theirNonce, role: role, serverNode: nodeId)
            var w = ByteWriter()
            w.blob(answer)
            return .accepted(role: role, welcome: Frame(.welcome, payload: w.bytes))
        } catch {
            return refuse("malformed hello: \(error)")
        }
    }
}

/// The connecting side of the handshake.
public struct HandshakeClient: Sendable {
    let credentials: ClusterCredentials
    let role: ConnectionRole
    let nonce: [UInt8]
    private var serverNonce: [UInt8]?
    private var serverNode: UInt64 = 0

    public init(credentials: ClusterCredentials, role: ConnectionRole, nonce: [UInt8] = Handshake.freshNonce()) {
        self.credentials = credentials
        self.role = role
        self.nonce = nonce
    }

    /// Answers the server's challenge with a hello. Throws `.unauthenticated`
    /// when the server belongs to another cluster, `.state` on a refusal or
    /// a malformed challenge.
    public mutating func answer(_ challenge: Frame) throws -> Frame {
        if challenge.kind == .refuse { throw LuigiError.state("refused: \(Handshake.reason(ofRefusal: challenge))") }
        guard serverNonce == nil, challenge.kind == .challenge, challenge.group == 0 else {
            throw LuigiError.state("expected a challenge frame, got \(challenge.kind)")
        }
        var r = ByteReader(challenge.payload)
        let cluster = try r.utf8()
        let theirNonce = try Handshake.readNonce(&r)
        let node = try r.u64le()
        try r.expectEnd("challenge")
        guard cluster == credentials.clusterId else {
            throw LuigiError.unauthenticated("the node belongs to cluster '\(cluster)', not '\(credentials.clusterId)'")
        }
        serverNonce = theirNonce
        serverNode = node
        var w = ByteWriter(capacity: 128)
        w.string(credentials.clusterId)
        Handshake.writeRole(role, to: &w)
        w.blob(nonce)
        w.blob(
            Handshake.proof(
                credentials, direction: 1, serverNonce: theirNonce, connectorNonce: nonce, role: role, serverNode: node))
        return Frame(.hello, payload: w.bytes)
    }

    /// Checks the server's welcome; returns the server's node id. Throws
    /// `.unauthenticated` when the server refuses the hello (our proof or
    /// cluster id is wrong) or its own proof is wrong (it does not know the
    /// secret), and `.state` when it is busy (`Handshake.busyPrefix`).
    public func finish(_ welcome: Frame) throws -> UInt64 {
        if welcome.kind == .refuse {
            let reason = Handshake.reason(ofRefusal: welcome)
            if reason.hasPrefix(Handshake.busyPrefix) { throw LuigiError.state("the node is busy: \(reason)") }
            throw LuigiError.unauthenticated("the node refused this connection: \(reason)")
        }
        guard let serverNonce, welcome.kind == .welcome, welcome.group == 0 else {
            throw LuigiError.state("expected a welcome frame, got \(welcome.kind)")
        }
        var r = ByteReader(welcome.payload)
        let proof = try r.blob()
        try r.expectEnd("welcome")
        let expected = Handshake.proof(
            credentials, direction: 2, serverNonce: serverNonce, connectorNonce: nonce, role: role, serverNode: serverNode)
        guard Handshake.sameProof(proof, expected) else {
            throw LuigiError.unauthenticated("the node could not prove it knows the cluster secret")
        }
        return serverNode
    }
}
