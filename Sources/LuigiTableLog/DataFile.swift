import LuigiBase

/// Bounds on what a table-log command may carry. They are checked before a
/// command is proposed and again when it is applied from the log, so a
/// command that breaks one changes nothing anywhere.
public enum TableLimits {
    public static let maxNameBytes = 255
    public static let maxSchemaBytes = 1 << 20
    public static let maxTxnIdBytes = 256
    public static let maxPathBytes = 4096
    public static let maxPartitionBytes = 1024
    public static let maxStatsBytes = 64 << 10
    /// Rows and sizes fit a signed 64-bit integer, as SQL and most readers need.
    public static let maxCount = UInt64(Int64.max)
    /// Adds plus removes in one commit.
    public static let maxFilesPerCommit = 100_000
}

/// One data file of a table: where it is, how many rows and bytes it holds,
/// its partition ("" when the table is not partitioned) and optional column
/// statistics, opaque to Luigi.
public struct DataFile: Hashable, Sendable {
    public var path: String
    public var rows: UInt64
    public var size: UInt64
    public var partition: String
    public var minStats: [UInt8]?
    public var maxStats: [UInt8]?

    public init(
        path: String, rows: UInt64, size: UInt64, partition: String = "", minStats: [UInt8]? = nil,
        maxStats: [UInt8]? = nil
    ) {
        self.path = path
        self.rows = rows
        self.size = size
        self.partition = partition
        self.minStats = minStats
        self.maxStats = maxStats
    }

    /// Throws `.invalidArgument` naming the first field out of bounds.
    public func validate() throws {
        try checkPath(path)
        guard rows <= TableLimits.maxCount, size <= TableLimits.maxCount else {
            throw LuigiError.invalidArgument("file \(path): rows and size must be at most 2^63-1, got \(rows) and \(size)")
        }
        guard partition.utf8.count <= TableLimits.maxPartitionBytes else {
            throw LuigiError.invalidArgument("file \(path): partition is longer than \(TableLimits.maxPartitionBytes) bytes")
        }
        for stats in [minStats, maxStats] where (stats?.count ?? 0) > TableLimits.maxStatsBytes {
            throw LuigiError.invalidArgument("file \(path): statistics are longer than \(TableLimits.maxStatsBytes) bytes")
        }
    }
}

/// A path names one file: non-empty, at most the limit, no NUL.
func checkPath(_ path: String) throws {
    guard !path.isEmpty else { throw LuigiError.invalidArgument("a file path is empty") }
    guard path.utf8.count <= TableLimits.maxPathBytes else {
        throw LuigiError.invalidArgument("a file path is longer than \(TableLimits.maxPathBytes) bytes")
    }
    guard !path.utf8.contains(0) else { throw LuigiError.invalidArgument("file path \(path.debugDescription) contains NUL") }
}

/// Table names and transaction ids: non-empty, bounded, no NUL.
func checkName(_ name: String, _ what: String, max: Int) throws {
    guard !name.isEmpty else { throw LuigiError.invalidArgument("\(what) is empty") }
    guard name.utf8.count <= max else { throw LuigiError.invalidArgument("\(what) is longer than \(max) bytes") }
    guard !name.utf8.contains(0) else { throw LuigiError.invalidArgument("\(what) \(name.debugDescription) contains NUL") }
}

/// Files sort by the bytes of their path: the one order every node and
/// every language agrees on.
func pathOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

extension ByteWriter {
    mutating func dataFile(_ f: DataFile) {
        string(f.path)
        varint(f.rows)
        varint(f.size)
        string(f.partition)
        optionalBlob(f.minStats)
        optionalBlob(f.maxStats)
    }

    mutating func optionalBlob(_ b: [UInt8]?) {
        if let b { u8(1); blob(b) } else { u8(0) }
    }
}

extension ByteReader {
    /// A file, checked against the limits (a violation is a decode error).
    mutating func dataFile() throws -> DataFile {
        let f = DataFile(
            path: try utf8(), rows: try varint(), size: try varint(), partition: try utf8(),
            minStats: try optionalBlob(), maxStats: try optionalBlob())
        do { try f.validate() } catch { throw LuigiError.decode("\(error)") }
        return f
    }

    mutating func optionalBlob() throws -> [UInt8]? { try flag() ? try blob() : nil }
}
