import CoreMetrics

import struct Prometheus.PrometheusMetricsFactory
import class Prometheus.PrometheusCollectorRegistry

/// The node's metrics, registered with its own Prometheus registry (no
/// global bootstrap, so several nodes can share a process in tests).
final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory

    let framesIn: Counter
    let framesOut: Counter
    let peerMessagesDropped: Counter
    let connectionsAccepted: Counter
    let connectionsRefused: Counter
    let connectionsEvicted: Counter
    let authFailures: Counter
    let badFrames: Counter
    let peerReadPauses: Counter
    let peerChunksSent: Counter
    let requests: Counter
    let requestsFailed: Counter
    let requestLatency: Timer
    let connectionsOpen: Gauge
    let peerLinks: Gauge

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
        framesIn = Counter(label: "luigi_frames_received_total", factory: factory)
        framesOut = Counter(label: "luigi_frames_sent_total", factory: factory)
        peerMessagesDropped = Counter(label: "luigi_peer_messages_dropped_total", factory: factory)
        connectionsAccepted = Counter(label: "luigi_connections_accepted_total", factory: factory)
        connectionsRefused = Counter(label: "luigi_connections_refused_total", factory: factory)
        connectionsEvicted = Counter(label: "luigi_connections_evicted_total", factory: factory)
        authFailures = Counter(label: "luigi_auth_failures_total", factory: factory)
        badFrames = Counter(label: "luigi_bad_frames_total", factory: factory)
        peerReadPauses = Counter(label: "luigi_peer_read_pauses_total", factory: factory)
        peerChunksSent = Counter(label: "luigi_peer_chunks_sent_total", factory: factory)
        requests = Counter(label: "luigi_client_requests_total", factory: factory)
        requestsFailed = Counter(label: "luigi_client_requests_failed_total", factory: factory)
        requestLatency = Timer(label: "luigi_client_request_seconds", factory: factory)
        connectionsOpen = Gauge(label: "luigi_connections_open", factory: factory)
        peerLinks = Gauge(label: "luigi_peer_links", factory: factory)
    }

    /// A per-group gauge (role, term, commit, applied), created on first use.
    func groupGauge(_ name: String, group: UInt64) -> Gauge {
        Gauge(label: "luigi_raft_\(name)", dimensions: [("group", String(group))], factory: factory)
    }

    func text() -> [UInt8] { registry.emitToBuffer() }
}
