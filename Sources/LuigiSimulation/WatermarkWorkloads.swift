import LuigiCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Keys drawn uniformly or by a Zipf law (rank k with weight 1/k^theta).
public struct KeyChooser: Sendable {
    public let count: Int
    public let theta: Double
    private let cumulative: [Double]

    public init(count: Int, theta: Double = 0) {
        self.count = max(1, count)
        self.theta = theta
        if theta > 0 {
            var acc = 0.0
            cumulative = (1...self.count).map { k in
                acc += 1 / pow(Double(k), theta)
                return acc
            }
        } else {
            cumulative = []
        }
    }

    public func next(_ rng: inout SplitMix64) -> Int {
        guard let total = cumulative.last else { return Int.random(in: 0..<count, using: &rng) }
        let u = rng.unit() * total
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// Single-shard transactions of at most `WatermarkLimits.maxOpsPerPart` ops.
func setupChunks(shard: UInt64, _ ops: [Op]) -> [[UInt64: [Op]]] {
    stride(from: 0, to: ops.count, by: WatermarkLimits.maxOpsPerPart).map {
        [shard: Array(ops[$0..<min(ops.count, $0 + WatermarkLimits.maxOpsPerPart)])]
    }
}

/// The micro benchmark: `ops` ops per transaction, `readFraction` of them
/// reads, the rest writes; a `crossShard` fraction of transactions spread
/// their ops over two shards.
public struct MicroWorkload: WatermarkWorkload {
    public var ops = 10
    public var readFraction = 0.5
    public var crossShard = 0.5
    public var keys: KeyChooser

    public init(keysPerShard: Int = 1_000, zipf: Double = 0, crossShard: Double = 0.5, ops: Int = 10) {
        keys = KeyChooser(count: keysPerShard, theta: zipf)
        self.crossShard = crossShard
        self.ops = ops
    }

    public func next(_ rng: inout SplitMix64, shards: Int) -> [UInt64: [Op]] {
        let first = UInt64.random(in: 0..<UInt64(shards), using: &rng)
        var involved = [first]
        if shards > 1 && rng.chance(crossShard) {
            var second = UInt64.random(in: 0..<UInt64(shards - 1), using: &rng)
            if second >= first { second += 1 }
            involved.append(second)
        }
        var parts: [UInt64: [Op]] = [:]
        for i in 0..<ops {
            let s = involved[i % involved.count]
            let key = "k\(s).\(keys.next(&rng))"
            let op: Op = rng.chance(readFraction) ? .read(key) : .write(key, Int64.random(in: 1...1_000_000, using: &rng))
            parts[s, default: []].append(op)
        }
        return parts
    }
}

/// Bank transfers with a balance check: money moves from one account to
/// another (on another shard a `crossShard` fraction of the time) only if
/// the source holds enough. `total(shards:)` is the money that must remain.
public struct BankWorkload: WatermarkWorkload {
    public var accountsPerShard: Int
    public var initialBalance: Int64
    public var crossShard: Double
    public var maxAmount: Int64

    public init(accountsPerShard: Int = 20, initialBalance: Int64 = 100, crossShard: Double = 0.5, maxAmount: Int64 = 60) {
        self.accountsPerShard = accountsPerShard
        self.initialBalance = initialBalance
        self.crossShard = crossShard
        self.maxAmount = maxAmount
    }

    public static func account(_ shard: UInt64, _ i: Int) -> String { "acct\(shard).\(i)" }

    /// Transactions that open every account (a shard's in chunks of at
    /// most `WatermarkLimits.maxOpsPerPart` writes).
    public func setup(shards: Int) -> [[UInt64: [Op]]] {
        (0..<UInt64(shards)).flatMap { s in
            setupChunks(shard: s, (0..<accountsPerShard).map { .write(Self.account(s, $0), initialBalance) })
        }
    }

    public func total(shards: Int) -> Int64 { Int64(shards * accountsPerShard) * initialBalance }

    public func next(_ rng: inout SplitMix64, shards: Int) -> [UInt64: [Op]] {
        let from = UInt64.random(in: 0..<UInt64(shards), using: &rng)
        var to = from
        if shards > 1 && rng.chance(crossShard) {
            to = UInt64.random(in: 0..<UInt64(shards - 1), using: &rng)
            if to >= from { to += 1 }
        }
        let a = Int.random(in: 0..<accountsPerShard, using: &rng)
        var b = Int.random(in: 0..<accountsPerShard, using: &rng)
        if from == to && a == b { b = (b + 1) % accountsPerShard }
        let amount = Int64.random(in: 1...maxAmount, using: &rng)
        let src = Self.account(from, a), dst = Self.account(to, b)
        if from == to {
            return [from: [.check(src, atLeast: amount), .add(src, -amount), .add(dst, amount)]]
        }
        return [from: [.check(src, atLeast: amount), .add(src, -amount)], to: [.add(dst, amount)]]
    }
}

/// A TPC-C subset: New-Order and Payment, half each, over warehouses
/// partitioned by warehouse (warehouse w lives on shard w / perShard). A
/// `crossShard` fraction of transactions touch a remote warehouse (a
/// New-Order item supplied from it, or a Payment by one of its customers),
/// on another shard when there is one. 1% of New-Orders name an unused
/// item and abort, as in the specification.
public struct TPCCWorkload: WatermarkWorkload {
    public var warehousesPerShard: Int
    public var crossShard: Double
    public static let districts = 10, customers = 30, items = 1_000

    public init(warehousesPerShard: Int = 4, crossShard: Double = 0.1) {
        self.warehousesPerShard = max(1, warehousesPerShard)
        self.crossShard = crossShard
    }

    func shard(of warehouse: Int) -> UInt64 { UInt64(warehouse / warehousesPerShard) }

    /// Warehouse and district rows and item prices, per shard.
    public func setup(shards: Int) -> [[UInt64: [Op]]] {
        (0..<shards).flatMap { s in
            var ops: [Op] = []
            for i in 0..<Self.items { ops.append(.write("item.\(i).price", Int64(100 + i % 900))) }
            for w in (s * warehousesPerShard)..<((s + 1) * warehousesPerShard) {
                ops.append(.write("w\(w).tax", 5))
                for d in 0..<Self.districts { ops.append(.write("w\(w).d\(d).next_o_id", 3_001)) }
            }
            return setupChunks(shard: UInt64(s), ops)
        }
    }

    public func next(_ rng: inout SplitMix64, shards: Int) -> [UInt64: [Op]] {
        let total = shards * warehousesPerShard
        let w = Int.random(in: 0..<total, using: &rng)
        var remote = w
        if rng.chance(crossShard) && total > 1 {
            if shards > 1 {
                var s = Int.random(in: 0..<(shards - 1), using: &rng)
                if UInt64(s) >= shard(of: w) { s += 1 }
                remote = s * warehousesPerShard + Int.random(in: 0..<warehousesPerShard, using: &rng)
            } else {
                remote = (w + 1 + Int.random(in: 0..<(total - 1), using: &rng)) % total
            }
        }
        let d = Int.random(in: 0..<Self.districts, using: &rng)
        let c = Int.random(in: 0..<Self.customers, using: &rng)
        let tag = rng.next() >> 16
        var parts: [UInt64: [Op]] = [:]
        func add(_ warehouse: Int, _ op: Op) { parts[shard(of: warehouse), default: []].append(op) }
        if rng.chance(0.5) {
            // New-Order: the district's next order id, 5-15 order lines.
            add(w, .read("w\(w).tax"))
            add(w, .read("w\(w).d\(d).next_o_id"))
            add(w, .add("w\(w).d\(d).next_o_id", 1))
            add(w, .read("w\(w).d\(d).c\(c).discount"))
            add(w, .write("w\(w).d\(d).order.\(tag)", Int64(c)))
            let lines = Int.random(in: 5...15, using: &rng)
            for l in 0..<lines {
                let supply = l == 0 ? remote : w
                let item = Int.random(in: 0..<Self.items, using: &rng)
                let qty = Int64.random(in: 1...10, using: &rng)
                add(w, .read("item.\(item).price"))
                add(supply, .add("w\(supply).stock.\(item).ytd", qty))
                add(supply, .add("w\(supply).stock.\(item).order_cnt", 1))
            }
            if rng.chance(0.01) { add(w, .check("item.unused", atLeast: 1)) }
        } else {
            // Payment: warehouse and district year-to-date, the customer's balance.
            let h = Int64.random(in: 100...500_000, using: &rng)
            add(w, .add("w\(w).ytd", h))
            add(w, .add("w\(w).d\(d).ytd", h))
            add(remote, .add("w\(remote).d\(d).c\(c).balance", -h))
            add(remote, .add("w\(remote).d\(d).c\(c).payment_cnt", 1))
            add(w, .write("w\(w).history.\(tag)", h))
        }
        return parts
    }
}
