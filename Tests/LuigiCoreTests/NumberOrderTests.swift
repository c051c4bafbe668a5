import LuigiCore
import Testing

@Suite struct NumberOrderTests {
    @Test func intsAndFloatsCompareByExactValue() {
        // 2^53 + 1 is not representable as a double; a lossy conversion would call them equal.
        let big = Int64(1) << 53 + 1
        #expect(Number.float(9_007_199_254_740_992.0) < .int(big))
        #expect(Number.int(Int64.max) < .float(9_223_372_036_854_775_808.0))
        #expect(Number.float(-9_223_372_036_854_775_808.0) < .int(Int64.min))
        #expect(Number.int(2) < .float(2.5))
        #expect(Number.float(-2.5) < .int(-2))
        #expect(Number.float(-.infinity) < .int(Int64.min))
        #expect(Number.int(Int64.max) < .float(.infinity))
    }

    @Test func equalValuesStillHaveOneOrder() {
        #expect(Number.float(3.0) < .int(3))
        #expect(Number.float(-0.0) < .float(0.0))
        #expect(!(Number.float(0.0) < .float(-0.0)))
        #expect(Number.float(1.5) == .float(1.5))
        #expect(Number.float(0.0) != .float(-0.0))
    }

    @Test func nanIsRejected() {
        #expect(throws: LuigiError.self) { try Number.checked(.nan) }
    }

    @Test func orderIsTotalAndTransitive() {
        let values: [Number] = [
            .int(-5), .int(0), .int(3), .int(Int64.max), .int(Int64.min), .float(-0.0), .float(0.0),
            .float(3.0), .float(2.999), .float(.infinity), .float(-.infinity), .float(1e300), .float(-1e-300),
        ]
        for a in values {
            for b in values {
                let lt = a < b, gt = b < a, eq = a == b
                #expect([lt, gt, eq].filter { $0 }.count == 1, "\(a) vs \(b)")
                for c in values where a < b && b < c {
                    #expect(a < c)
                }
            }
        }
    }
}
