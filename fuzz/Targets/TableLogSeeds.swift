import LuigiCore

/// Seeds of the table-log targets: commands against `TableWorld` that take
/// every path of a commit (new versions with adds, removes, replaced files,
/// statistics and partitions; duplicates, conflicts, refusals) plus a few
/// that do not decode, and snapshots of real machines with several tables,
/// retention and trimmed history.
extension FuzzSeeds {
    // Short names for the seed tables below.
    private static func f(_ path: String, rows: UInt64, partition: String = "", min: [UInt8]? = nil, max: [UInt8]? = nil) -> DataFile {
        TableWorld.file(path, rows: rows, partition: partition, min: min, max: max)
    }

    private static func c(_ table: String, _ base: UInt64, _ txn: String, _ adds: [DataFile], _ removes: [String]) -> TableCommand {
        TableWorld.commit(table, base, txn, adds: adds, removes: removes)
    }

    // MARK: - table_command

    static func tableCommandSeeds() -> [[UInt8]] {
        let valid: [TableCommand] = [
            // Tables: a new one, the same again (a retry), another schema or retention (conflicts).
            .createTable(name: "orders", schema: [0x0A, 0x0B, 0x0C], retain: 3),
            .createTable(name: "events", schema: [1, 2, 3], retain: 0),
            .createTable(name: "events", schema: [9], retain: 0),
            .createTable(name: "staging", schema: [7], retain: 2),
            // New versions (adds listed out of path order: the decoder sorts them).
            c("events", 3, "ev-4", [
                f("events/p=3/données-é.parquet", rows: 12, partition: "p=3", min: [0, 0, 1], max: [0xFF]),
                f("events/p=3/a.parquet", rows: 1_000_000, partition: "p=3", min: [], max: nil),
            ], ["events/p=2/c.parquet"]),
            c("events", 3, "ev-4b", [f("events/p=1/b.parquet", rows: 300, partition: "p=1", min: [1], max: [2])],
              ["events/p=2/c.parquet", "events/p=1/b.parquet"]),
            c("metrics", 4, "m-5", [f("m/5", rows: 5), f("m/6", rows: 0)], ["m/3"]),
            c("staging", 0, "s-1", [f("s/x", rows: 1), f("s/y", rows: 2, partition: "day=2024-01-01"), f("s/z", rows: 3)], []),
            c("staging", 0, "s-empty", [], []),
            // Retries: a kept id with the same files, in another order, on another base.
            c("events", 1, "ev-2", [f("events/p=2/c.parquet", rows: 7, partition: "p=2", min: [3])], ["events/p=1/a.parquet"]),
            c("metrics", 0, "m-4", [f("m/4", rows: 4)], []),
            c("metrics", 2, "m-3", [f("m/3", rows: 3)], ["m/1"]),
            // Conflicts: a kept id with other files, a stale base, a forgotten id (stale).
            c("events", 3, "ev-1", [f("events/p=9/z.parquet", rows: 1)], []),
            c("events", 2, "ev-5", [f("events/p=9/z.parquet", rows: 1)], []),
            c("metrics", 1, "m-2", [f("m/2", rows: 2)], []),
            // Refused: no such table, a removed file that is not live, an added one that is.
            c("nope", 0, "x-1", [f("x", rows: 1)], []),
            c("events", 3, "ev-6", [], ["events/p=1/a.parquet"]),
            c("events", 3, "ev-7", [f("events/p=2/c.parquet", rows: 1)], []),
        ]
        let huge = UInt64(Int64.max) + 1
        let malformed: [TableCommand] = [
            c("events", 3, "bad", [f("", rows: 1)], []),
            c("events", 3, "bad", [f("a\0b", rows: 1)], []),
            c("events", 3, "bad", [f("dup", rows: 1), f("dup", rows: 2)], []),
            c("events", 3, "bad", [], ["gone", "gone"]),
            c("events", 3, "bad", [DataFile(path: "big", rows: huge, size: 1)], []),
            c("events", 3, "", [f("p", rows: 1)], []),
            c(String(repeating: "n", count: TableLimits.maxNameBytes + 1), 0, "bad", [], []),
            .createTable(name: "a\0b", schema: [], retain: 0),
            .createTable(name: "", schema: [1], retain: 1),
        ]
        func body(_ c: TableCommand) -> [UInt8] { Array(c.encoded().dropFirst(FuzzMagic.tableCommand.count)) }
        var seeds = valid.map(body) + malformed.map(body)
        let one = body(valid[4])
        seeds.append([3] + one.dropFirst())  // unknown command tag
        seeds.append(one + [0])  // a trailing byte
        seeds.append(Array(one.dropLast(3)))  // truncated
        seeds.append([])
        return seeds
    }

    // MARK: - table_snapshot

    static func tableSnapshotSeeds() -> [[UInt8]] {
        /// Applies commands as log entries from `index` on; each must commit.
        func apply(_ m: TableLogMachine, _ commands: [TableCommand], from index: UInt64) {
            for (i, command) in commands.enumerated() {
                let result = m.apply(RaftEntry(term: 5, index: index + UInt64(i), data: command.encoded()))
                guard case .committed? = try? TableOutcome(decoding: result) else {
                    fatalError("seeds: \(command) was refused: \((try? TableOutcome(decoding: result)).map { "\($0)" } ?? "?")")
                }
            }
        }
        // The world, then a new table and one more version of each table.
        let grown = TableWorld.machine()
        apply(grown, [
            .createTable(name: "orders", schema: [0x0A], retain: 3),
            c("orders", 0, "o-1", [f("o/1", rows: 1, partition: "region=eu")], []),
            c("events", 3, "ev-4", [f("events/p=3/d.parquet", rows: 9, partition: "p=3", min: [1, 2], max: [3, 4])],
              ["events/p=2/c.parquet"]),
            c("metrics", 4, "m-5", [f("m/5", rows: 5)], ["m/2"]),
            c("staging", 0, "s-1", [f("s/x", rows: 1)], []),
        ], from: TableWorld.nextIndex)

        // Several tables with long, trimmed histories, far into the log.
        let busy = TableLogMachine()
        var commands: [TableCommand] = [
            .createTable(name: "a", schema: [], retain: 0),
            .createTable(name: "b", schema: Array("col:int64,name:utf8".utf8), retain: 3),
            .createTable(name: "c", schema: [0], retain: 1),
            .createTable(name: "d", schema: [1, 1], retain: 5),
            .createTable(name: "tables/é", schema: [2], retain: 2),
        ]
        for v in 0..<UInt64(6) {  // a: every version kept; each one replaces the last file
            let removes = v == 0 ? [] : ["a/\(v - 1)"]
            commands.append(c("a", v, "a-\(v + 1)", [f("a/\(v)", rows: v * 10, partition: v % 2 == 0 ? "even" : "odd")], removes))
        }
        for v in 0..<UInt64(10) {  // b: the last 3 versions; grows, then replaces its oldest file
            var removes: [String] = []
            var adds = [f("b/\(v)", rows: v + 1, min: [UInt8(v)], max: [UInt8(v), 0xFF])]
            if v >= 4 {
                removes.append("b/\(v - 4)")
                if v % 3 == 0 { adds.append(f("b/\(v - 4)", rows: 99, partition: "re")) }
            }
            commands.append(c("b", v, "b-\(v + 1)", adds, removes))
        }
        for v in 0..<UInt64(3) {  // c: only the latest version
            commands.append(c("c", v, "c-\(v + 1)", [f("c/\(v)", rows: 1)], v > 0 ? ["c/\(v - 1)"] : []))
        }
        commands.append(c("tables/é", 0, "é-1", [f("é/données.parquet", rows: 3, partition: "pays=FR")], []))
        commands.append(c("tables/é", 1, "é-2", [], []))
        apply(busy, commands, from: 1_000_000)

        // A replica that restored the busy one, then moved on.
        let restored = TableLogMachine()
        do { try restored.restore(busy.snapshot()) } catch { fatalError("seeds: \(error)") }
        apply(restored, [
            c("b", 10, "b-11", [], ["b/9", "b/8"]),
            c("d", 0, "d-1", [f("d/1", rows: 1), f("d/2", rows: 2)], []),
        ], from: 1_000_000 + UInt64(commands.count))

        let one = TableLogMachine()
        apply(one, [.createTable(name: "t", schema: [], retain: 1)], from: 1)

        return [TableLogMachine(), one, TableWorld.machine(), grown, busy, restored].map { fuzzUnseal($0.snapshot()) }
    }
}
