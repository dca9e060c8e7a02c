extension KeyedDecodingContainer {
    /// Replaces `value` with the decoded one when `key` is present, so a partial configuration keeps
    /// the defaults of every key it leaves out.
    func overwrite<T: Decodable>(_ key: Key, _ value: inout T) throws {
        if let decoded = try decodeIfPresent(T.self, forKey: key) { value = decoded }
    }
}
