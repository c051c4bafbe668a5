/// One-way delay to one shard, estimated from the shard's receive stamps:
/// (shard clock at arrival) - (coordinator clock at send), over a sliding
/// window, read as a high percentile. Clock skew is inside every sample;
/// that is the point: the timestamp must arrive in the future of the shard's
/// clock, not of a true one.
struct DelayEstimator {
    private var samples: [Int64] = []
    private var next = 0
    let window: Int
    let percentile: Double
    private(set) var estimate: UInt64

    init(initial: UInt64, window: Int = 64, percentile: Double = 0.95) {
        estimate = initial
        self.window = window
        self.percentile = percentile
    }

    mutating func add(sentAt: UInt64, receivedAt: UInt64) {
        let sample = Int64(clamping: receivedAt) &- Int64(clamping: sentAt)
        if samples.count < window {
            samples.append(sample)
        } else {
            samples[next] = sample
            next = (next + 1) % window
        }
        let sorted = samples.sorted()
        let i = min(sorted.count - 1, Int(Double(sorted.count - 1) * percentile + 0.5))
        estimate = UInt64(max(0, sorted[i]))
    }
}
