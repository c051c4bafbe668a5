import LuigiBase
import Testing

/// `utf8Precedes` (memcmp on contiguous UTF-8) orders exactly as comparing
/// the UTF-8 bytes one by one: canonical snapshots depend on it.
struct UTF8OrderTests {
    @Test func agreesWithByteByByteOrder() {
        var rng = SplitMix64(seed: 42)
        let alphabet: [String] = ["", "a", "b", "z", "A", "0", "~", "é", "ü", "ÿ", "\u{7F}", "\u{80}", "中", "😀", "\0"]
        func word() -> String {
            (0..<Int(rng.next() % 24)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined()
        }
        var words = (0..<400).map { _ in word() }
        words += ["a", "ab", "abc", String(repeating: "x", count: 15), String(repeating: "x", count: 16), ""]
        for a in words {
            for b in words.prefix(80) {
                #expect(utf8Precedes(a, b) == a.utf8.lexicographicallyPrecedes(b.utf8), "\(a.debugDescription) vs \(b.debugDescription)")
            }
        }
    }
}
