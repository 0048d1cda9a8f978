import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A FIX data dictionary in QuickFIX's XML format: fields, messages, header and trailer, with
/// components expanded in place and repeating groups kept as groups.
///
/// Load the bundled FIX 4.4 one with `FIXDictionary.fix44`; `validate(_:)` checks a message
/// against it the way a session must before handing the message to the application.
public struct FIXDictionary: Sendable {
    public struct Field: Hashable, Sendable {
        public var number: Int
        public var name: String
        /// The FIX type as the dictionary spells it: INT, PRICE, UTCTIMESTAMP, CHAR …
        public var type: String
        /// Allowed values → description; empty when the field takes any value of its type.
        public var enumValues: [String: String]
    }

    /// A member of a message, component or group, in dictionary order.
    public enum Member: Hashable, Sendable {
        case field(tag: Int, required: Bool)
        case group(Group)

        public var tag: Int {
            switch self {
            case .field(let tag, _): return tag
            case .group(let group): return group.counterTag
            }
        }

        public var isRequired: Bool {
            switch self {
            case .field(_, let required): return required
            case .group(let group): return group.isRequired
            }
        }
    }

    /// A repeating group: its NumInGroup counter and the members of one instance. The first
    /// member is the delimiter: every instance starts with it.
    public struct Group: Hashable, Sendable {
        public var counterTag: Int
        public var isRequired: Bool
        public var members: [Member]

        public var delimiterTag: Int? { members.first?.tag }
    }

    public struct Message: Hashable, Sendable {
        public var name: String
        public var msgType: String
        /// "admin" for session messages, "app" for application messages.
        public var category: String
        public var members: [Member]

        public var isAdmin: Bool { category == "admin" }
    }

    public private(set) var beginString: String
    public private(set) var fields: [Int: Field] = [:]
    public private(set) var fieldNumbersByName: [String: Int] = [:]
    public private(set) var messages: [String: Message] = [:]
    public private(set) var header: [Member] = []
    public private(set) var trailer: [Member] = []

    /// The bundled FIX 4.4 dictionary (QuickFIX's FIX44.xml), parsed once.
    ///
    /// The file ships inside this module, so failing to load it is a packaging bug, not a
    /// runtime condition a caller could handle.
    public static let fix44: FIXDictionary = {
        do {
            return try FIXDictionary.loadBundledFIX44()
        } catch {
            preconditionFailure("BatonFIX: the bundled Resources/FIX44.xml did not load: \(error)")
        }
    }()

    /// Parses the bundled FIX44.xml (prefer the cached `fix44`).
    public static func loadBundledFIX44() throws(FIXDictionaryError) -> FIXDictionary {
        guard let url = Bundle.module.url(forResource: "FIX44", withExtension: "xml") else {
            throw FIXDictionaryError(message: "FIX44.xml is missing from the BatonFIX resource bundle")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw FIXDictionaryError(message: "cannot read \(url.path): \(error)")
        }
        return try FIXDictionary(xml: Array(data))
    }

    /// Parses a dictionary in QuickFIX's XML format.
    public init(xml: [UInt8]) throws(FIXDictionaryError) {
        let root = try XMLTree.parse(xml)
        guard root.name == "fix" else {
            throw FIXDictionaryError(message: "root element is <\(root.name)>, expected <fix>")
        }
        let major = root.attributes["major"] ?? "?"
        let minor = root.attributes["minor"] ?? "?"
        beginString = "\(root.attributes["type"] ?? "FIX").\(major).\(minor)"

        for fieldNode in root.child("fields")?.children ?? [] where fieldNode.name == "field" {
            guard let numberText = fieldNode.attributes["number"], let number = Int(numberText),
                let name = fieldNode.attributes["name"], let type = fieldNode.attributes["type"]
            else {
                throw FIXDictionaryError(
                    message: "field on line \(fieldNode.line) lacks a numeric number, a name or a type")
            }
            var values: [String: String] = [:]
            for value in fieldNode.children where value.name == "value" {
                if let e = value.attributes["enum"] { values[e] = value.attributes["description"] ?? "" }
            }
            fields[number] = Field(number: number, name: name, type: type, enumValues: values)
            fieldNumbersByName[name] = number
        }
        dataFieldLengthTags = Self.dataFieldLengthTags(fields: fields, byName: fieldNumbersByName)

        var components: [String: XMLTree] = [:]
        for component in root.child("components")?.children ?? [] where component.name == "component" {
            if let name = component.attributes["name"] { components[name] = component }
        }
        let resolver = MemberResolver(fieldNumbers: fieldNumbersByName, components: components)

        header = try resolver.members(of: root.child("header"), required: true, depth: 0)
        trailer = try resolver.members(of: root.child("trailer"), required: true, depth: 0)
        for node in root.child("messages")?.children ?? [] where node.name == "message" {
            guard let name = node.attributes["name"], let msgType = node.attributes["msgtype"] else {
                throw FIXDictionaryError(message: "message on line \(node.line) lacks a name or msgtype")
            }
            messages[msgType] = Message(
                name: name, msgType: msgType, category: node.attributes["msgcat"] ?? "app",
                members: try resolver.members(of: node, required: true, depth: 0))
        }
    }

    public func field(_ tag: Int) -> Field? { fields[tag] }

    public func message(_ msgType: String) -> Message? { messages[msgType] }

    /// "Symbol(55)", or "55" for a tag the dictionary does not know.
    public func describe(tag: Int) -> String {
        fields[tag].map { "\($0.name)(\(tag))" } ?? String(tag)
    }

    /// DATA field tag → its LENGTH field tag: the LENGTH field numbered one below, or named
    /// `<Data>Length`/`<Data>Len` (Signature(89) ← SignatureLength(93)). Derived once, when the
    /// dictionary loads: every session asks for it when it starts.
    public private(set) var dataFieldLengthTags: [Int: Int] = [:]

    private static func dataFieldLengthTags(fields: [Int: Field], byName: [String: Int]) -> [Int: Int] {
        var pairs: [Int: Int] = [:]
        for field in fields.values where field.type == "DATA" {
            if let previous = fields[field.number - 1], previous.type == "LENGTH" {
                pairs[field.number] = previous.number
            } else if let tag = byName[field.name + "Length"] ?? byName[field.name + "Len"] {
                pairs[field.number] = tag
            }
        }
        return pairs
    }
}

public struct FIXDictionaryError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "FIX dictionary: \(message)" }
}

/// Expands components and groups into `FIXDictionary.Member`s.
private struct MemberResolver {
    var fieldNumbers: [String: Int]
    var components: [String: XMLTree]

    func members(of node: XMLTree?, required parentRequired: Bool, depth: Int) throws(FIXDictionaryError)
        -> [FIXDictionary
        .Member]
    {
        guard let node else { return [] }
        guard depth < 32 else {
            throw FIXDictionaryError(message: "components nest deeper than 32 levels at line \(node.line) (a cycle?)")
        }
        var result: [FIXDictionary.Member] = []
        for child in node.children {
            // A required member of an optional component is only required when the component
            // is present, which a flat check cannot know: treat it as optional.
            let required = parentRequired && child.attributes["required"] == "Y"
            switch child.name {
            case "field":
                result.append(.field(tag: try number(of: child), required: required))
            case "group":
                let members = try self.members(of: child, required: true, depth: depth + 1)
                result.append(
                    .group(
                        FIXDictionary.Group(counterTag: try number(of: child), isRequired: required, members: members)))
            case "component":
                guard let name = child.attributes["name"], let component = components[name] else {
                    throw FIXDictionaryError(
                        message: "unknown component \(child.attributes["name"] ?? "?") at line \(child.line)")
                }
                result += try members(of: component, required: required, depth: depth + 1)
            default:
                continue
            }
        }
        return result
    }

    func number(of node: XMLTree) throws(FIXDictionaryError) -> Int {
        guard let name = node.attributes["name"], let number = fieldNumbers[name] else {
            throw FIXDictionaryError(
                message: "<\(node.name)> at line \(node.line) names \(node.attributes["name"] ?? "nothing"), "
                    + "which is not in <fields>")
        }
        return number
    }
}

/// The XML as a plain tree, built by XMLParser and then read without callbacks.
private final class XMLTree {
    let name: String
    let attributes: [String: String]
    let line: Int
    var children: [XMLTree] = []

    init(name: String, attributes: [String: String], line: Int) {
        self.name = name
        self.attributes = attributes
        self.line = line
    }

    func child(_ name: String) -> XMLTree? { children.first { $0.name == name } }

    static func parse(_ bytes: [UInt8]) throws(FIXDictionaryError) -> XMLTree {
        let parser = XMLParser(data: Data(bytes))
        let builder = Builder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root, builder.stack.isEmpty else {
            if let open = builder.stack.last {
                throw FIXDictionaryError(message: "XML ends inside <\(open.name)> opened at line \(open.line)")
            }
            let reason = builder.error ?? parser.parserError.map { "\($0)" } ?? "no root element"
            throw FIXDictionaryError(
                message: "XML does not parse at line \(parser.lineNumber), column \(parser.columnNumber): \(reason)")
        }
        return root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLTree] = []
        var root: XMLTree?
        var error: String?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
        ) {
            let node = XMLTree(name: elementName, attributes: attributeDict, line: parser.lineNumber)
            if let parent = stack.last {
                parent.children.append(node)
            } else if root == nil {
                root = node
            }
            stack.append(node)
        }

        func parser(
            _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
        ) {
            _ = stack.popLast()
        }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
            error = "\(parseError)"
        }
    }
}
