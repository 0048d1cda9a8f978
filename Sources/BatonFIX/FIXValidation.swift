/// One way a message breaks its dictionary, with the tag and value it concerns.
public struct FIXValidationError: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        case beginStringMismatch(expected: String)
        case unknownMsgType
        case requiredFieldMissing
        /// The dictionary knows the tag, but not in this message (or this group).
        case fieldNotDefinedForMessage
        /// The dictionary does not know the tag at all.
        case undefinedTag
        case wrongValueType(expected: String)
        case valueNotInEnum
        case groupCountMismatch(declared: Int, actual: Int)
        case duplicateTag
    }

    public var kind: Kind
    public var tag: Int?
    /// The field's dictionary name, when it has one.
    public var tagName: String?
    public var value: String?
    public var msgType: String?

    public var sessionRejectReason: FIXSessionRejectReason {
        switch kind {
        case .beginStringMismatch: return .other
        case .unknownMsgType: return .invalidMsgType
        case .requiredFieldMissing: return .requiredTagMissing
        case .fieldNotDefinedForMessage: return .tagNotDefinedForMessageType
        case .undefinedTag: return .invalidTagNumber
        case .wrongValueType: return .incorrectDataFormat
        case .valueNotInEnum: return .valueIncorrect
        case .groupCountMismatch: return .incorrectNumInGroupCount
        case .duplicateTag: return .tagAppearsMoreThanOnce
        }
    }

    public var description: String {
        let field = tag.map { t in tagName.map { "\($0)(\(t))" } ?? "tag \(t)" } ?? ""
        let shown = value.map { " \"\($0)\"" } ?? ""
        let inMessage = msgType.map { " in MsgType \($0)" } ?? ""
        switch kind {
        case .beginStringMismatch(let expected): return "BeginString\(shown) is not \(expected)"
        case .unknownMsgType: return "unknown MsgType\(shown)"
        case .requiredFieldMissing: return "required \(field) missing\(inMessage)"
        case .fieldNotDefinedForMessage: return "\(field) is not defined\(inMessage)"
        case .undefinedTag: return "\(field) is not in the dictionary\(inMessage)"
        case .wrongValueType(let expected): return "\(field) value\(shown) is not a valid \(expected)"
        case .valueNotInEnum: return "\(field) value\(shown) is not one of its allowed values"
        case .groupCountMismatch(let declared, let actual):
            return "\(field) declares \(declared) group instances but \(actual) follow\(inMessage)"
        case .duplicateTag: return "\(field) appears more than once\(inMessage)"
        }
    }
}

extension FIXDictionary {
    /// Every way `message` breaks this dictionary, in field order; empty when it conforms.
    ///
    /// BeginString, BodyLength and CheckSum are the codec's business and are not checked
    /// here, except that BeginString must be this dictionary's version.
    public func validate(_ message: FIXMessage) -> [FIXValidationError] {
        var errors: [FIXValidationError] = []
        let msgType = message.msgType
        if message.beginString != beginString {
            errors.append(
                FIXValidationError(
                    kind: .beginStringMismatch(expected: beginString), tag: 8, tagName: "BeginString",
                    value: message.beginString, msgType: msgType))
        }
        guard let msgType, let definition = messages[msgType] else {
            errors.append(
                FIXValidationError(
                    kind: msgType == nil ? .requiredFieldMissing : .unknownMsgType, tag: 35, tagName: "MsgType",
                    value: msgType, msgType: msgType))
            return errors
        }
        var walker = Walker(dictionary: self, fields: message.fields, msgType: msgType)
        let top = header + definition.members + trailer
        var seen: Set<Int> = []
        walker.walk(members: top, delimiter: nil, seen: &seen)
        walker.checkRequired(top, seen: seen, skipping: [8, 9, 10])
        errors += walker.errors
        return errors
    }

    /// Whether `value` is well-formed for a field of the given dictionary type.
    public static func isValid(_ value: String, type: String) -> Bool {
        switch type {
        case "INT", "DAYOFMONTH":
            return isInteger(value, allowNegative: true)
        case "LENGTH", "NUMINGROUP", "SEQNUM":
            return isInteger(value, allowNegative: false)
        case "FLOAT", "PRICE", "QTY", "AMT", "PERCENTAGE", "PRICEOFFSET":
            return FIXDecimal(value) != nil
        case "CHAR":
            return value.utf8.count == 1
        case "BOOLEAN":
            return value == "Y" || value == "N"
        case "UTCTIMESTAMP":
            return FIXTimestamp(fixString: value) != nil
        case "UTCTIMEONLY":
            return FIXTimestamp(fixString: "19700101-" + value) != nil
        case "UTCDATEONLY", "LOCALMKTDATE", "UTCDATE":
            return value.utf8.count == 8 && FIXTimestamp(fixString: value + "-00:00:00") != nil
        case "MONTHYEAR":
            let bytes = Array(value.utf8)
            guard bytes.count >= 6, FIXTimestamp(fixString: String(value.prefix(6)) + "01-00:00:00") != nil else {
                return false
            }
            let rest = String(value.dropFirst(6))
            if rest.isEmpty { return true }
            if rest.utf8.count == 2 { return FIXTimestamp(fixString: value + "-00:00:00") != nil }
            return rest.utf8.count == 2 && rest.first == "w" && ("1"..."5").contains(rest.dropFirst())
        default:
            // STRING, DATA, CURRENCY, EXCHANGE, COUNTRY, MULTIPLEVALUESTRING: any text.
            return true
        }
    }

    static func isInteger(_ value: String, allowNegative: Bool) -> Bool {
        var digits = value.utf8[...]
        if allowNegative, digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        return !digits.isEmpty && digits.count <= 18 && digits.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}

/// Walks a message's fields against nested member lists (message, then group instances).
private struct Walker {
    let dictionary: FIXDictionary
    let fields: [FIXField]
    let msgType: String
    var index = 0
    var errors: [FIXValidationError] = []

    init(dictionary: FIXDictionary, fields: [FIXField], msgType: String) {
        self.dictionary = dictionary
        self.fields = fields
        self.msgType = msgType
    }

    func error(_ kind: FIXValidationError.Kind, _ field: FIXField) -> FIXValidationError {
        FIXValidationError(
            kind: kind, tag: field.tag, tagName: dictionary.fields[field.tag]?.name, value: field.string,
            msgType: msgType)
    }

    /// Consumes fields that belong to `members`. At top level (`delimiter == nil`) a field that
    /// does not belong is an error; inside a group instance it ends the instance, as does the
    /// delimiter coming round again (the next instance).
    mutating func walk(members: [FIXDictionary.Member], delimiter: Int?, seen: inout Set<Int>) {
        var groups: [Int: FIXDictionary.Group] = [:]
        var tags: Set<Int> = []
        for member in members {
            tags.insert(member.tag)
            if case .group(let group) = member { groups[member.tag] = group }
        }
        while index < fields.count {
            let field = fields[index]
            guard tags.contains(field.tag) else {
                if delimiter != nil { return }
                errors.append(
                    error(dictionary.fields[field.tag] == nil ? .undefinedTag : .fieldNotDefinedForMessage, field))
                index += 1
                continue
            }
            if field.tag == delimiter && seen.contains(field.tag) { return }
            guard seen.insert(field.tag).inserted else {
                errors.append(error(.duplicateTag, field))
                index += 1
                continue
            }
            checkValue(field)
            index += 1
            guard let group = groups[field.tag], let groupDelimiter = group.delimiterTag else { continue }
            var instances = 0
            while index < fields.count && fields[index].tag == groupDelimiter {
                instances += 1
                var instanceSeen: Set<Int> = []
                walk(members: group.members, delimiter: groupDelimiter, seen: &instanceSeen)
                checkRequired(group.members, seen: instanceSeen, skipping: [])
            }
            let declared = Int(field.string) ?? -1
            if declared != instances {
                errors.append(error(.groupCountMismatch(declared: declared, actual: instances), field))
            }
        }
    }

    mutating func checkRequired(_ members: [FIXDictionary.Member], seen: Set<Int>, skipping: Set<Int>) {
        for member in members where member.isRequired && !seen.contains(member.tag) && !skipping.contains(member.tag) {
            errors.append(
                FIXValidationError(
                    kind: .requiredFieldMissing, tag: member.tag, tagName: dictionary.fields[member.tag]?.name,
                    value: nil, msgType: msgType))
        }
    }

    mutating func checkValue(_ field: FIXField) {
        guard let definition = dictionary.fields[field.tag] else { return }
        let value = field.string
        guard FIXDictionary.isValid(value, type: definition.type) else {
            errors.append(error(.wrongValueType(expected: definition.type), field))
            return
        }
        guard !definition.enumValues.isEmpty else { return }
        let values = definition.type == "MULTIPLEVALUESTRING" ? value.split(separator: " ").map(String.init) : [value]
        if values.isEmpty || !values.allSatisfy({ definition.enumValues[$0] != nil }) {
            errors.append(error(.valueNotInEnum, field))
        }
    }
}
