/// A UTC instant with millisecond precision, the resolution of FIX 4.4 UTCTIMESTAMP.
///
/// The session is given its time as one of these (`now:`), never reads a clock itself.
public struct FIXTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static func < (lhs: FIXTimestamp, rhs: FIXTimestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public func adding(milliseconds: Int64) -> FIXTimestamp {
        FIXTimestamp(millisecondsSinceEpoch: millisecondsSinceEpoch + milliseconds)
    }

    public func adding(seconds: Int) -> FIXTimestamp { adding(milliseconds: Int64(seconds) * 1000) }

    public func milliseconds(since other: FIXTimestamp) -> Int64 {
        millisecondsSinceEpoch - other.millisecondsSinceEpoch
    }

    /// `YYYYMMDD-HH:MM:SS.sss`.
    public var fixString: String {
        let ms = millisecondsSinceEpoch
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let (y, m, d) = FIXTimestamp.civil(fromDays: days)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return pad(y, 4) + pad(m, 2) + pad(d, 2) + "-" + pad(msOfDay / 3_600_000, 2) + ":"
            + pad(msOfDay / 60_000 % 60, 2) + ":" + pad(msOfDay / 1000 % 60, 2) + "." + pad(msOfDay % 1000, 3)
    }

    public var description: String { fixString }

    /// Parses `YYYYMMDD-HH:MM:SS` with optional `.sss`; nil for anything else, including
    /// out-of-range fields (month 13, hour 24 …). A leap second (60) is accepted as FIX allows.
    public init?(fixString: String) {
        let b = Array(fixString.utf8)
        guard b.count == 17 || b.count == 21 else { return nil }
        func num(_ range: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in range {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b[8] == UInt8(ascii: "-"), b[11] == UInt8(ascii: ":"), b[14] == UInt8(ascii: ":"),
            let y = num(0..<4), let mo = num(4..<6), let d = num(6..<8), let h = num(9..<11),
            let mi = num(12..<14), let s = num(15..<17),
            (1...12).contains(mo), (1...FIXTimestamp.daysIn(month: mo, year: y)).contains(d),
            h < 24, mi < 60, s <= 60
        else { return nil }
        var ms: Int64 = 0
        if b.count == 21 {
            guard b[17] == UInt8(ascii: "."), let frac = num(18..<21) else { return nil }
            ms = frac
        }
        let days = FIXTimestamp.days(fromCivil: y, m: mo, d: d)
        self.init(millisecondsSinceEpoch: days * 86_400_000 + ((h * 60 + mi) * 60 + s) * 1000 + ms)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
    static func days(fromCivil year: Int64, m: Int64, d: Int64) -> Int64 {
        let y = m <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp + (mp < 10 ? 3 : -9)
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

/// A decimal number as FIX writes prices and quantities: exact, no binary floating point.
/// `units × 10^-scale`; "101.25" is (10125, 2).
public struct FIXDecimal: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var units: Int64
    public var scale: Int

    public init(units: Int64, scale: Int = 0) {
        self.units = units
        self.scale = max(0, scale)
    }

    public init(integerLiteral value: Int64) { self.init(units: value) }

    /// Parses `-?digits(.digits)?`; nil for anything else or more than 18 significant digits.
    public init?(_ text: String) {
        var units: Int64 = 0
        var scale = 0
        var digits = 0
        var seenDot = false
        var negative = false
        for (i, c) in text.utf8.enumerated() {
            if c == UInt8(ascii: "-") && i == 0 {
                negative = true
            } else if c == UInt8(ascii: ".") && !seenDot {
                seenDot = true
            } else if c >= 48 && c <= 57 {
                digits += 1
                guard digits <= 18 else { return nil }
                units = units * 10 + Int64(c - 48)
                if seenDot { scale += 1 }
            } else {
                return nil
            }
        }
        guard digits > 0 else { return nil }
        self.init(units: negative ? -units : units, scale: scale)
    }

    public var description: String {
        guard scale > 0 else { return String(units) }
        let magnitude = String(units.magnitude)
        let padded = String(repeating: "0", count: max(0, scale + 1 - magnitude.count)) + magnitude
        let cut = padded.index(padded.endIndex, offsetBy: -scale)
        return (units < 0 ? "-" : "") + padded[..<cut] + "." + padded[cut...]
    }

    /// For arithmetic that tolerates rounding (averages, reports); compare with `==` on values
    /// of the same scale instead of doubles where it matters.
    public var doubleValue: Double {
        var d = Double(units)
        for _ in 0..<scale { d /= 10 }
        return d
    }
}
