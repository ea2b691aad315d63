/// JSONValueEncoder turns an `Encodable` value into a JSONValue (Swift's Codable protocols are
/// in the standard library; no Foundation). A type's coding keys are then its one declaration
/// of its JSON keys: the encoder writes them in the order the type encodes them (the order of
/// its stored properties for synthesized conformances), and an absent optional as `null`, so
/// every key is always there for a reader.
public struct JSONValueEncoder {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = Slot()
        try value.encode(to: Encoding(slot: root, codingPath: []))
        return root.value
    }

    /// A place for one value while it is being built; objects keep their keys in order.
    final class Slot {
        enum Content { case value(JSONValue), object([(String, Slot)]), array([Slot]) }
        var content = Content.value(.null)

        var value: JSONValue {
            switch content {
            case let .value(v): v
            case let .object(members): .object(members.map { ($0.0, $0.1.value) })
            case let .array(items): .array(items.map(\.value))
            }
        }

        func member(_ key: String) -> Slot {
            var members: [(String, Slot)] = []
            if case let .object(existing) = content { members = existing }
            if let found = members.first(where: { $0.0 == key }) { return found.1 }
            let slot = Slot()
            members.append((key, slot))
            content = .object(members)
            return slot
        }

        func append() -> Slot {
            var items: [Slot] = []
            if case let .array(existing) = content { items = existing }
            let slot = Slot()
            items.append(slot)
            content = .array(items)
            return slot
        }

        var count: Int {
            if case let .array(items) = content { return items.count }
            return 0
        }
    }

    struct Encoding: Encoder {
        let slot: Slot
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if case .value = slot.content { slot.content = .object([]) }
            return KeyedEncodingContainer(Keyed(slot: slot, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if case .value = slot.content { slot.content = .array([]) }
            return Unkeyed(slot: slot, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(slot: slot, codingPath: codingPath) }
    }

    /// The primitives as JSON; everything else encodes itself into a fresh slot.
    static func store<T: Encodable>(_ value: T, in slot: Slot, path: [any CodingKey]) throws {
        switch value {
        case let v as String: slot.content = .value(.string(v))
        case let v as Bool: slot.content = .value(.bool(v))
        case let v as Double: slot.content = .value(.double(v))
        case let v as Float: slot.content = .value(.double(Double(v)))
        case let v as any BinaryInteger:
            guard let n = Int64(exactly: v) else {
                throw EncodingError.invalidValue(
                    value, .init(codingPath: path, debugDescription: "\(v) does not fit JSON's integers here"))
            }
            slot.content = .value(.int(n))
        default: try value.encode(to: Encoding(slot: slot, codingPath: path))
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let slot: Slot
        var codingPath: [any CodingKey]

        mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue).content = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try JSONValueEncoder.store(value, in: slot.member(key.stringValue), path: codingPath + [key])
        }
        // An absent optional is written as null, not left out.
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
        }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws { try encodeOptional(value, key) }
        mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { try encodeOptional(value, key) }
        private mutating func encodeOptional<T: Encodable>(_ value: T?, _ key: Key) throws {
            if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
            -> KeyedEncodingContainer<NestedKey>
        {
            Encoding(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            Encoding(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { Encoding(slot: slot.member("super"), codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            Encoding(slot: slot.member(key.stringValue), codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let slot: Slot
        var codingPath: [any CodingKey]
        var count: Int { slot.count }

        mutating func encodeNil() throws { slot.append().content = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try JSONValueEncoder.store(value, in: slot.append(), path: codingPath + [Index(count)])
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<
            NestedKey
        > {
            Encoding(slot: slot.append(), codingPath: codingPath + [Index(count)]).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            Encoding(slot: slot.append(), codingPath: codingPath + [Index(count)]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { Encoding(slot: slot.append(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let slot: Slot
        var codingPath: [any CodingKey]

        mutating func encodeNil() throws { slot.content = .value(.null) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try JSONValueEncoder.store(value, in: slot, path: codingPath)
        }
    }
}

/// JSONValueDecoder reads a `Decodable` value from a JSONValue, distrusting it: an integer
/// must be exact and fit its type, a missing key or a wrong type is a `Failure` naming the
/// key's path (`processes[3].pid`). Ranges beyond the type's are the caller's to check after
/// decoding, where they are declared once.
public struct JSONValueDecoder {
    public init() {}

    /// What was wrong, and where.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var path: String
        public var what: String
        public var description: String { path.isEmpty ? what : "\(path): \(what)" }
    }

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(Failure) -> T {
        do {
            return try T(from: Decoding(value: value, codingPath: []))
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(path: "", what: "\(error)")
        }
    }

    /// `a.b[2].c`, as errors name keys.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue, key.stringValue == "\(index)" {
                out += "[\(index)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out
    }

    struct Decoding: Decoder {
        let value: JSONValue
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func fail(_ what: String) -> Failure { Failure(path: JSONValueDecoder.path(codingPath), what: what) }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case let .object(members) = value else { throw fail("not an object") }
            return KeyedDecodingContainer(Keyed(members: members, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case let .array(items) = value else { throw fail("not an array") }
            return Unkeyed(items: items, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer {
            Single(value: value, codingPath: codingPath)
        }
    }

    /// The primitives from JSON; everything else decodes itself.
    static func load<T: Decodable>(_ type: T.Type, from value: JSONValue, path: [any CodingKey]) throws -> T {
        func fail(_ what: String) -> Failure { Failure(path: JSONValueDecoder.path(path), what: what) }
        let primitive: Any?
        switch type {
        case is String.Type:
            guard case let .string(s) = value else { throw fail("not a string") }
            primitive = s
        case is Bool.Type:
            guard case let .bool(b) = value else { throw fail("not a boolean") }
            primitive = b
        case is Double.Type, is Float.Type:
            let d: Double
            switch value {
            case let .int(n): d = Double(n)
            case let .double(x): d = x
            default: throw fail("not a number")
            }
            primitive = type == Float.self ? Float(d) as Any : d as Any
        case let integer as any FixedWidthInteger.Type:
            guard case let .int(n) = value else { throw fail("not an integer") }
            guard let exact = exactly(integer, n) else { throw fail("\(n) is out of range") }
            primitive = exact
        default:
            return try T(from: Decoding(value: value, codingPath: path))
        }
        guard let typed = primitive as? T else { throw fail("not a \(T.self)") }
        return typed
    }

    static func exactly<I: FixedWidthInteger>(_ type: I.Type, _ n: Int64) -> I? { I(exactly: n) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [(String, JSONValue)]
        var codingPath: [any CodingKey]
        var allKeys: [Key] { members.compactMap { Key(stringValue: $0.0) } }

        func lookup(_ key: Key) -> JSONValue? { members.first { $0.0 == key.stringValue }?.1 }
        func contains(_ key: Key) -> Bool { lookup(key) != nil }
        func decodeNil(forKey key: Key) throws -> Bool { lookup(key).map { $0 == .null } ?? true }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            guard let value = lookup(key) else {
                throw Failure(path: JSONValueDecoder.path(codingPath + [key]), what: "missing")
            }
            return try JSONValueDecoder.load(type, from: value, path: codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try Decoding(value: lookup(key) ?? .null, codingPath: codingPath + [key]).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try Decoding(value: lookup(key) ?? .null, codingPath: codingPath + [key]).unkeyedContainer()
        }
        func superDecoder() throws -> any Decoder { Decoding(value: .object(members), codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder {
            Decoding(value: lookup(key) ?? .null, codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        var codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(items: [JSONValue], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        mutating func next() throws -> (JSONValue, [any CodingKey]) {
            let path = codingPath + [JSONValueEncoder.Index(currentIndex)]
            guard !isAtEnd else { throw Failure(path: JSONValueDecoder.path(path), what: "missing") }
            defer { currentIndex += 1 }
            return (items[currentIndex], path)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (value, path) = try next()
            return try JSONValueDecoder.load(type, from: value, path: path)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            let (value, path) = try next()
            return try Decoding(value: value, codingPath: path).container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (value, path) = try next()
            return try Decoding(value: value, codingPath: path).unkeyedContainer()
        }
        mutating func superDecoder() throws -> any Decoder {
            let (value, path) = try next()
            return Decoding(value: value, codingPath: path)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSONValue
        var codingPath: [any CodingKey]
        func decodeNil() -> Bool { value == .null }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONValueDecoder.load(type, from: value, path: codingPath)
        }
    }
}

extension JSONValueEncoder {
    /// An array position in a coding path.
    struct Index: CodingKey {
        var intValue: Int?
        var stringValue: String
        init(_ index: Int) { intValue = index; stringValue = String(index) }
        init?(intValue: Int) { self.init(intValue) }
        init?(stringValue: String) { nil }
    }
}

/// An array that an older writer may have left out: decoded as empty when absent or null,
/// always written.
@propertyWrapper
public struct AbsentIsEmpty<Element: Codable & Equatable & Sendable>: Codable, Equatable, Sendable {
    public var wrappedValue: [Element]
    public init(wrappedValue: [Element]) { self.wrappedValue = wrappedValue }
    public init(from decoder: any Decoder) throws { wrappedValue = try [Element](from: decoder) }
    public func encode(to encoder: any Encoder) throws { try wrappedValue.encode(to: encoder) }
}

extension KeyedDecodingContainer {
    public func decode<E>(_ type: AbsentIsEmpty<E>.Type, forKey key: Key) throws -> AbsentIsEmpty<E> {
        try decodeIfPresent(type, forKey: key) ?? AbsentIsEmpty(wrappedValue: [])
    }
}
