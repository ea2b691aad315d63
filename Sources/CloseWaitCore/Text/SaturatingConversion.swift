extension Int {
    /// `value` rounded toward zero and clamped to Int's range; NaN is 0. Figures computed from
    /// untrusted inputs (a config, a state file, a clock) never trap on conversion.
    public init(saturating value: Double) {
        if value.isNaN { self = 0; return }
        if value >= 9.2e18 { self = .max; return }
        if value <= -9.2e18 { self = .min; return }
        self = Int(value)
    }
}

extension Int64 {
    public init(saturating value: Double) { self = Int64(Int(saturating: value)) }
}
