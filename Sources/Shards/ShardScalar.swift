/// Swift element types that map to a shard dtype. Shards are little-endian; so are the hosts this runs on
/// (x86-64, arm64), so values are stored as their in-memory bytes.
public protocol ShardScalar {
    static var dtype: DType { get }
    init()
}

extension Float: ShardScalar { public static var dtype: DType { .f32 } }
extension Int32: ShardScalar { public static var dtype: DType { .i32 } }
extension Int64: ShardScalar { public static var dtype: DType { .i64 } }
extension UInt8: ShardScalar { public static var dtype: DType { .u8 } }
