#if canImport(Glibc)
import Glibc
#endif

/// Whether `a` sorts before `b` by their UTF-8 bytes: the order every
/// canonical encoding here writes keys in. Compares contiguous bytes with
/// memcmp (native strings, small ones included, are contiguous UTF-8);
/// element by element only for a bridged string that is not.
@inlinable
public func utf8Precedes(_ a: String, _ b: String) -> Bool {
    let fast = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y -> Bool in
            let n = min(x.count, y.count)
            let order = n == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, n)
            return order != 0 ? order < 0 : x.count < y.count
        }
    }
    if let fast, let result = fast { return result }
    return a.utf8.lexicographicallyPrecedes(b.utf8)
}
