import LuigiBase

/// Bounds how many appends (and bytes) may be in flight to one follower.
struct Inflights {
    let maxMessages: Int
    let maxBytes: Int
    private var sent: [(last: UInt64, bytes: Int)] = []
    private var head = 0
    private var bytes = 0

    init(maxMessages: Int, maxBytes: Int) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    var count: Int { sent.count - head }
    var isFull: Bool { count >= maxMessages || (maxBytes > 0 && bytes >= maxBytes) }

    mutating func add(last: UInt64, bytes size: Int) {
        sent.append((last, size))
        bytes += size
    }

    /// Frees everything up to and including `index`.
    mutating func free(upTo index: UInt64) {
        while head < sent.count && sent[head].last <= index {
            bytes -= sent[head].bytes
            head += 1
        }
        if head > 64 && head * 2 > sent.count {
            sent.removeFirst(head)
            head = 0
        }
    }

    mutating func freeFirst() {
        guard count > 0 else { return }
        free(upTo: sent[head].last)
    }

    mutating func reset() {
        sent = []
        head = 0
        bytes = 0
    }
}
