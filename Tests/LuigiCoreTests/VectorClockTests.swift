import LuigiCore
import PropertyBased
import Testing

@Suite struct VectorClockTests {
    @Test func tickReadAndAbsentEntries() throws {
        var vc = VectorClock()
        #expect(try vc.tick(7) == 1)
        #expect(try vc.tick(7) == 2)
        #expect(vc[7] == 2)
        #expect(vc[8] == 0)
        #expect(vc.count == 1)
        vc[7] = 0
        #expect(vc.count == 0)
        #expect(vc == VectorClock())
    }

    @Test func tickAtMaximumOverflows() {
        var vc = VectorClock([1: UInt64.max])
        #expect(throws: LuigiError.self) { try vc.tick(1) }
        #expect(vc[1] == UInt64.max)
    }

    @Test func compareCoversAllFourOrders() {
        let a = VectorClock([1: 1])
        let b = VectorClock([1: 1, 2: 1])
        let c = VectorClock([1: 2])
        #expect(a.compare(a) == .equal)
        #expect(a.compare(b) == .before)
        #expect(b.compare(a) == .after)
        #expect(b.compare(c) == .concurrent)
        #expect(a.happenedBefore(b))
        #expect(b.isConcurrent(with: c))
    }

    @Test func mergeIsPointwiseMaximum() {
        var a = VectorClock([1: 3, 2: 1])
        a.merge(VectorClock([2: 5, 3: 2]))
        #expect(a == VectorClock([1: 3, 2: 5, 3: 2]))
    }

    @Test func mergeIsACommutativeIdempotentJoin() async {
        let clock = Gen.uint64(in: 0...6).array(of: 0...6)
        await propertyCheck(input: clock, clock) { x, y in
            let a = VectorClock(Dictionary(x.enumerated().map { (UInt64($0.offset), $0.element) }, uniquingKeysWith: max))
            let b = VectorClock(Dictionary(y.enumerated().map { (UInt64($0.offset), $0.element) }, uniquingKeysWith: max))
            var ab = a
            ab.merge(b)
            var ba = b
            ba.merge(a)
            #expect(ab == ba)
            var twice = ab
            twice.merge(b)
            #expect(twice == ab)
            #expect(a.isDominated(by: ab) && b.isDominated(by: ab))
        }
    }

    @Test func encodingRoundTrips() throws {
        let vc = VectorClock([0: 1, 9: 300, UInt64.max: UInt64.max])
        #expect(try VectorClock(decoding: vc.encoded()) == vc)
    }

    @Test func decodingGarbageThrows() async {
        await propertyCheck(count: 500, input: Gen.uint8(in: 0...255).array(of: 0...40)) { raw in
            #expect(throws: LuigiError.self) { try VectorClock(decoding: raw) }
        }
    }
}
