import LuigiBase
import LuigiWire
import Testing

// Frames: "LNF" | version | kind | 3 zero bytes | group u64 LE | length u32 LE |
// payload | CRC-32C, read by the bounded incremental `FrameDecoder`.

/// A frame of a random kind, group and payload (at most `maxPayload` bytes).
func randomFrame(_ rng: inout SplitMix64, maxPayload: Int = 300) -> Frame {
    let kind = FrameKind.allCases[rng.int(0...(FrameKind.allCases.count - 1))]
    let group: UInt64
    switch rng.int(0...3) {
    case 0: group = 0
    case 1: group = .max
    case 2: group = rng.next() % 16
    default: group = rng.next()
    }
    return Frame(kind, group: group, payload: rng.bytes(upTo: maxPayload))
}

/// The bytes of `frame` with `edit` applied to them, then the CRC-32C
/// recomputed, so only the edited field's own check can refuse them.
func resealed(_ frame: Frame, _ edit: (inout [UInt8]) -> Void) throws -> [UInt8] {
    var bytes = try frame.encoded()
    bytes.removeLast(Frame.trailerSize)
    edit(&bytes)
    let crc = CRC32C.checksum(bytes)
    for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: crc >> UInt32(8 * i))) }
    return bytes
}

/// What `next()` did: a frame, nothing yet, or a refusal.
enum Step: Equatable {
    case frame(Frame)
    case incomplete
    case refused(LuigiError)
}

func step(_ d: inout FrameDecoder) -> Step {
    do {
        guard let f = try d.next() else { return .incomplete }
        return .frame(f)
    } catch let e as LuigiError {
        return .refused(e)
    } catch {
        return .refused(.state("unexpected error type \(error)"))
    }
}

func isDecodeError(_ s: Step) -> Bool {
    if case .refused(.decode) = s { return true }
    return false
}

func newDecoder(maxPayload: Int = Frame.defaultMaxPayload) -> FrameDecoder {
    do { return try FrameDecoder(maxPayload: maxPayload) } catch { fatalError("decoder: \(error)") }
}

@Suite struct FrameTests {
    @Test func layoutIsAsDocumented() throws {
        let f = Frame(.raft, group: 0x0102_0304_0506_0708, payload: [0xAA, 0xBB])
        let bytes = try f.encoded()
        let body: [UInt8] = [0x4C, 0x4E, 0x46, 1, 5, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, 2, 0, 0, 0, 0xAA, 0xBB]
        let crc = CRC32C.checksum(body)
        #expect(bytes == body + [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: crc >> UInt32($0)) })
        #expect(bytes.count == Frame.headerSize + 2 + Frame.trailerSize)
        // Kinds are stable wire values.
        #expect(FrameKind.allCases.map(\.rawValue) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    }

    @Test func roundTripEveryKind() {
        sweep(200, "frame round trip") { seed in
            var rng = SplitMix64(seed: seed)
            for kind in FrameKind.allCases {
                var f = randomFrame(&rng)
                f.kind = kind
                let bytes = try f.encoded()
                try ensure(bytes.count == Frame.headerSize + f.payload.count + Frame.trailerSize, "size \(bytes.count)")
                var d = newDecoder()
                d.push(bytes)
                try ensure(d.buffered == bytes.count, "buffered \(d.buffered) after one push of \(bytes.count)")
                let got = try d.next()
                try ensure(got == f, "decoded \(String(describing: got)), sent \(f)")
                try ensure(d.buffered == 0, "\(d.buffered) bytes left")
                try ensure(try d.next() == nil, "a second frame out of one")
            }
        }
    }

    @Test func emptyAndLargePayloads() throws {
        for payload in [[], [0], [UInt8](repeating: 0xFF, count: 70_000)] {
            let f = Frame(.request, group: 42, payload: payload)
            var d = newDecoder()
            d.push(try f.encoded())
            #expect(try d.next() == f)
        }
    }

    @Test func byteByBytePushes() {
        sweep(40, "frames pushed byte by byte") { seed in
            var rng = SplitMix64(seed: seed)
            let frames = (0..<rng.int(1...6)).map { _ in randomFrame(&rng, maxPayload: 80) }
            var d = newDecoder()
            var out: [Frame] = []
            var sinceLast = 0
            for f in frames {
                let bytes = try f.encoded()
                for (i, b) in bytes.enumerated() {
                    d.push([b])
                    sinceLast += 1
                    let s = step(&d)
                    if i == bytes.count - 1 {
                        guard case .frame(let got) = s else { throw CheckFailed(description: "no frame at its last byte: \(s)") }
                        out.append(got)
                        sinceLast = 0
                    } else {
                        try ensure(s == .incomplete, "byte \(i) of \(bytes.count): \(s)")
                    }
                    try ensure(d.buffered == sinceLast, "buffered \(d.buffered), expected \(sinceLast)")
                }
            }
            try ensure(out == frames, "frames differ")
        }
    }

    @Test func manyFramesInOnePush() {
        sweep(60, "many frames in one push") { seed in
            var rng = SplitMix64(seed: seed)
            let frames = (0..<rng.int(1...40)).map { _ in randomFrame(&rng, maxPayload: 200) }
            let stream = try frames.flatMap { try $0.encoded() }
            var d = newDecoder()
            d.push(stream)
            var out: [Frame] = []
            while let f = try d.next() { out.append(f) }
            try ensure(out == frames, "got \(out.count) frames of \(frames.count)")
            try ensure(d.buffered == 0, "\(d.buffered) bytes left")
        }
    }

    /// A stream cut into random chunks (the compaction of the decoder's buffer
    /// runs many times): every frame comes out once, in order, and `buffered`
    /// is always what was pushed minus what was returned.
    @Test func randomChunksAndBufferedBookkeeping() {
        sweep(100, "random chunks") { seed in
            var rng = SplitMix64(seed: seed)
            let frames = (0..<rng.int(1...30)).map { _ in randomFrame(&rng, maxPayload: 150) }
            let sizes = try frames.map { try $0.encoded().count }
            let stream = try frames.flatMap { try $0.encoded() }
            var d = newDecoder()
            var out: [Frame] = []
            var pushed = 0
            var consumed = 0
            while pushed < stream.count {
                let n = min(stream.count - pushed, rng.int(0...(rng.chance(0.2) ? 400 : 30)))
                d.push(stream[pushed..<(pushed + n)])
                pushed += n
                try ensure(d.buffered == pushed - consumed, "buffered \(d.buffered) after push, expected \(pushed - consumed)")
                while let f = try d.next() {
                    consumed += sizes[out.count]
                    out.append(f)
                    try ensure(d.buffered == pushed - consumed, "buffered \(d.buffered), expected \(pushed - consumed)")
                }
            }
            try ensure(out == frames, "got \(out.count) frames of \(frames.count)")
            try ensure(d.buffered == 0, "\(d.buffered) left")
        }
    }

    @Test func everyTruncationIsIncompleteThenCompletes() {
        sweep(20, "truncations") { seed in
            var rng = SplitMix64(seed: seed)
            let f = randomFrame(&rng, maxPayload: 60)
            let bytes = try f.encoded()
            for cut in 0..<bytes.count {
                var d = newDecoder()
                d.push(bytes[0..<cut])
                let s = step(&d)
                try ensure(s == .incomplete, "cut at \(cut) of \(bytes.count): \(s)")
                try ensure(d.buffered == cut, "buffered \(d.buffered) at cut \(cut)")
                d.push(bytes[cut...])
                try ensure(step(&d) == .frame(f), "cut at \(cut): the rest did not complete the frame")
                try ensure(d.buffered == 0, "cut at \(cut): \(d.buffered) left")
            }
        }
    }

    /// No single bit flip passes: it is refused at once, or (a flip that makes
    /// the length larger, still within the limit) the decoder waits for the
    /// announced bytes and then refuses them at the checksum.
    @Test func everyBitFlipIsRefused() {
        let limit = 4096
        sweep(25, "bit flips") { seed in
            var rng = SplitMix64(seed: seed)
            let f = randomFrame(&rng, maxPayload: 64)
            let bytes = try f.encoded()
            var waited = 0
            for bit in 0..<(bytes.count * 8) {
                var flipped = bytes
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                var d = newDecoder(maxPayload: limit)
                d.push(flipped)
                switch step(&d) {
                case .frame(let got):
                    throw CheckFailed(description: "bit \(bit) flipped, yet decoded \(got)")
                case .refused(let e):
                    try ensure(isDecodeError(.refused(e)), "bit \(bit): \(e) is not a decode error")
                case .incomplete:
                    let byte = bit / 8
                    try ensure((16..<20).contains(byte), "bit \(bit) (byte \(byte), not the length) left the frame incomplete")
                    let announced = Int(flipped[16]) | Int(flipped[17]) << 8 | Int(flipped[18]) << 16 | Int(flipped[19]) << 24
                    try ensure(announced > f.payload.count && announced <= limit,
                               "bit \(bit): waiting with an announced length \(announced) (was \(f.payload.count))")
                    waited += 1
                    d.push(rng.bytes(announced - f.payload.count))
                    let s = step(&d)
                    try ensure(isDecodeError(s), "bit \(bit): the completed frame was not refused: \(s)")
                }
                // Refusal is final.
                d.push(bytes)
                try ensure(isDecodeError(step(&d)), "bit \(bit): the decoder recovered after an error")
            }
            try ensure(waited > 0, "no length flip waited (the test lost its point)")
        }
    }

    @Test func oversizedHeaderIsRefusedBeforeThePayload() throws {
        // The limit itself is fine...
        var ok = newDecoder(maxPayload: 1000)
        let fits = Frame(.raft, group: 1, payload: [UInt8](repeating: 7, count: 1000))
        let fitsBytes = try fits.encoded()
        ok.push(fitsBytes.prefix(Frame.headerSize))
        #expect(try ok.next() == nil)
        ok.push(fitsBytes.dropFirst(Frame.headerSize))
        #expect(try ok.next() == fits)

        // ...one byte more is refused as soon as the 20 header bytes are in.
        let over = try Frame(.raft, group: 1, payload: [UInt8](repeating: 7, count: 1001)).encoded()
        var d = newDecoder(maxPayload: 1000)
        d.push(over.prefix(Frame.headerSize - 1))
        #expect(step(&d) == .incomplete)
        d.push(over[Frame.headerSize - 1..<Frame.headerSize])
        #expect(isDecodeError(step(&d)))
        #expect(d.buffered == Frame.headerSize)

        // The default limit, against a header announcing 4 GiB - 1 (no payload follows).
        var header = Array(over.prefix(Frame.headerSize))
        header[16...19] = [0xFF, 0xFF, 0xFF, 0xFF]
        var big = newDecoder()
        big.push(header)
        #expect(isDecodeError(step(&big)))
        var atDefault = Array(over.prefix(Frame.headerSize))
        let n = UInt32(Frame.defaultMaxPayload + 1)
        for i in 0..<4 { atDefault[16 + i] = UInt8(truncatingIfNeeded: n >> UInt32(8 * i)) }
        var d2 = newDecoder()
        d2.push(atDefault)
        #expect(isDecodeError(step(&d2)))

        // A limit of 0 takes empty frames only.
        var zero = newDecoder(maxPayload: 0)
        zero.push(try Frame(.welcome).encoded())
        #expect(try zero.next() == Frame(.welcome))
        zero.push(try Frame(.welcome, payload: [1]).encoded().prefix(Frame.headerSize))
        #expect(isDecodeError(step(&zero)))
    }

    @Test func garbageIsRefusedBeforeTwentyBytes() {
        // Each wrong byte of the magic is caught as soon as it arrives.
        for prefix in [[0x00], [0x47], [0x4C, 0x00], [0x4C, 0x4E, 0x47], [0x4E]] as [[UInt8]] {
            var d = newDecoder()
            d.push(prefix)
            #expect(isDecodeError(step(&d)), "\(prefix)")
        }
        // An HTTP request on the peer port: refused at its first byte.
        var http = newDecoder()
        http.push(Array("G".utf8))
        #expect(isDecodeError(step(&http)))
        // A correct magic alone waits.
        var good = newDecoder()
        #expect(step(&good) == .incomplete)
        good.push([0x4C, 0x4E, 0x46])
        #expect(step(&good) == .incomplete)
        // Garbage after a whole frame is caught at its first byte too.
        var after = newDecoder()
        after.push((try? Frame(.raft).encoded()) ?? [])
        after.push([0x4C, 0x4E, 0x00])
        #expect(step(&after) == .frame(Frame(.raft)))
        #expect(isDecodeError(step(&after)))
    }

    @Test func headerFieldsAreChecked() throws {
        let f = Frame(.request, group: 9, payload: [1, 2, 3])
        func refused(_ bytes: [UInt8]) -> Bool {
            var d = newDecoder()
            d.push(bytes)
            return isDecodeError(step(&d))
        }
        // The re-sealed, unedited frame passes: only the edit is refused below.
        #expect(!refused(try resealed(f) { _ in }))
        for i in 5...7 {
            for v: UInt8 in [1, 0x80, 0xFF] {
                #expect(refused(try resealed(f) { $0[i] = v }), "reserved byte \(i) = \(v)")
            }
        }
        for kind: UInt8 in [0, 11, 12, 0x7F, 0xFF] {
            #expect(refused(try resealed(f) { $0[4] = kind }), "kind \(kind)")
        }
        for version: UInt8 in [0, 2, 0xFF] {
            #expect(refused(try resealed(f) { $0[3] = version }), "version \(version)")
        }
        // Every valid kind decodes when re-sealed (the kind check is not a blanket refusal).
        for kind in FrameKind.allCases {
            var d = newDecoder()
            d.push(try resealed(f) { $0[4] = kind.rawValue })
            #expect(try d.next() == Frame(kind, group: 9, payload: [1, 2, 3]))
        }
        // A wrong checksum alone.
        var bad = try f.encoded()
        bad[bad.count - 1] ^= 0x01
        #expect(refused(bad))
    }

    @Test func anErrorIsFinal() throws {
        var d = newDecoder()
        d.push([0x00])
        guard case .refused(let first) = step(&d) else {
            Issue.record("garbage was not refused")
            return
        }
        d.push(try Frame(.raft, payload: [1]).encoded())
        for _ in 0..<3 {
            #expect(step(&d) == .refused(first))
        }
        // Also after a checksum error in the middle of a good stream.
        var s = newDecoder()
        var broken = try Frame(.raft, payload: [1, 2]).encoded()
        broken[21] ^= 0x10
        s.push(try Frame(.reply).encoded() + broken + (try Frame(.reply).encoded()))
        #expect(step(&s) == .frame(Frame(.reply)))
        #expect(isDecodeError(step(&s)))
        #expect(isDecodeError(step(&s)))
    }

    @Test func maxPayloadIsRangeChecked() throws {
        #expect(throws: LuigiError.self) { try FrameDecoder(maxPayload: -1) }
        #expect(throws: LuigiError.self) { try FrameDecoder(maxPayload: Frame.maxPayloadCeiling + 1) }
        #expect(throws: LuigiError.self) { try FrameDecoder(maxPayload: .max) }
        #expect(throws: LuigiError.self) { try FrameDecoder(maxPayload: .min) }
        #expect(try FrameDecoder(maxPayload: 0).maxPayload == 0)
        #expect(try FrameDecoder(maxPayload: Frame.maxPayloadCeiling).maxPayload == Frame.maxPayloadCeiling)
        #expect(try FrameDecoder().maxPayload == Frame.defaultMaxPayload)
        #expect(Frame.defaultMaxPayload == 16 << 20)
    }

    /// A decoder at the ceiling still refuses lengths above it (2^30 < 2^32 - 1).
    @Test func theCeilingIsBelowTheLengthField() throws {
        var d = try FrameDecoder(maxPayload: Frame.maxPayloadCeiling)
        var header = try Frame(.raft).encoded().prefix(Frame.headerSize).map { $0 }
        let n = UInt32(Frame.maxPayloadCeiling + 1)
        for i in 0..<4 { header[16 + i] = UInt8(truncatingIfNeeded: n >> UInt32(8 * i)) }
        d.push(header)
        #expect(isDecodeError(step(&d)))
    }
}
