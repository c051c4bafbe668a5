import LuigiBase
import LuigiWire
import Testing

/// A peer frame too large to travel whole goes as `chunk` frames and is
/// put back together by `ChunkAssembler`, one transfer at a time.
@Suite struct FrameChunkTests {
    /// The pieces of a frame of `kind` carrying `message`, as a link sends them.
    func pieces(_ message: [UInt8], transfer: UInt64, group: UInt64, size: Int, kind: FrameKind = .raft) -> [Frame] {
        var out: [Frame] = []
        var offset = 0
        while offset < message.count {
            let chunk = FrameChunk(of: Frame(kind, group: group, payload: message), transfer: transfer, offset: offset, maxBytes: size)
            offset += chunk.bytes.count
            out.append(Frame(.chunk, group: group, payload: chunk.encoded()))
        }
        return out
    }

    @Test func messagesOfAnySizeComeBackWholeInOrder() {
        sweep(200, "chunk round trip") { seed in
            var rng = SplitMix64(seed: seed)
            var assembler = ChunkAssembler(maxTotal: 1 << 20)
            for transfer in UInt64(1)...3 {
                let message = rng.bytes(rng.int(1...5000))
                let size = rng.int(1...700)
                let kind: FrameKind = [.raft, .delta, .watermark][rng.int(0...2)]
                let frames = pieces(message, transfer: transfer, group: 7, size: size, kind: kind)
                try ensure(frames.count == (message.count + size - 1) / size, "\(frames.count) pieces of \(size) for \(message.count)")
                for (i, frame) in frames.enumerated() {
                    var decoder = try FrameDecoder()
                    decoder.push(try frame.encoded())
                    guard let decoded = try decoder.next() else { throw CheckFailed(description: "piece \(i) did not decode") }
                    let whole = try assembler.push(decoded)
                    try ensure((whole != nil) == (i == frames.count - 1), "whole after piece \(i) of \(frames.count)")
                    if let whole { try ensure(whole == Frame(kind, group: 7, payload: message), "frame \(transfer) came back different") }
                }
                try ensure(assembler.buffered == 0, "bytes left after transfer \(transfer)")
            }
        }
    }

    @Test func outOfOrderForeignOrOversizedPiecesAreRefusedAndChangeNothing() throws {
        let message = (0..<100).map { UInt8($0) }
        let frames = pieces(message, transfer: 5, group: 3, size: 30)
        var assembler = ChunkAssembler(maxTotal: 100)
        func refused(_ frame: Frame, _ why: String) {
            #expect(throws: LuigiError.self, "\(why)") { _ = try assembler.push(frame) }
        }
        refused(frames[1], "a transfer that does not start at 0")
        refused(Frame(.chunk, group: 3, payload: [1, 2, 3]), "a short header")
        refused(Frame(.chunk, group: 3, payload: FrameChunk(transfer: 5, total: 100, offset: 0, kind: .raft, bytes: []).encoded()), "an empty piece")
        let large = FrameChunk(transfer: 6, total: 101, offset: 0, kind: .raft, bytes: [1])
        refused(Frame(.chunk, group: 3, payload: large.encoded()), "a frame over the limit")
        let overrun = FrameChunk(transfer: 6, total: 2, offset: 0, kind: .raft, bytes: [1, 2, 3])
        refused(Frame(.chunk, group: 3, payload: overrun.encoded()), "a piece past the frame's end")
        var nested = FrameChunk(transfer: 6, total: 2, offset: 0, kind: .raft, bytes: [1]).encoded()
        nested[24] = FrameKind.chunk.rawValue
        refused(Frame(.chunk, group: 3, payload: nested), "a chunk of chunks")
        nested[24] = 0xEE
        refused(Frame(.chunk, group: 3, payload: nested), "an unknown kind")
        #expect(try assembler.push(frames[0]) == nil)
        refused(frames[2], "a gap")
        refused(frames[0], "a repeat")
        refused(Frame(.chunk, group: 4, payload: frames[1].payload), "another group mid-transfer")
        let other = FrameChunk(transfer: 9, total: 100, offset: 30, kind: .raft, bytes: Array(message[30..<60]))
        refused(Frame(.chunk, group: 3, payload: other.encoded()), "another transfer mid-transfer")
        let longer = FrameChunk(transfer: 5, total: 99, offset: 30, kind: .raft, bytes: Array(message[30..<60]))
        refused(Frame(.chunk, group: 3, payload: longer.encoded()), "a changed total")
        let otherKind = FrameChunk(transfer: 5, total: 100, offset: 30, kind: .delta, bytes: Array(message[30..<60]))
        refused(Frame(.chunk, group: 3, payload: otherKind.encoded()), "a changed kind")
        // None of that disturbed the transfer in progress.
        #expect(assembler.buffered == 30)
        #expect(try assembler.push(frames[1]) == nil)
        #expect(try assembler.push(frames[2]) == nil)
        #expect(try assembler.push(frames[3]) == Frame(.raft, group: 3, payload: message))
    }
}
