/// A small seeded random number generator (SplitMix64), so that random and property tests are
/// reproducible: the same seed gives the same sequence on every run and platform. Shared by the
/// unit test targets (`RingfenceTestSupport`).
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// `count` random printable ASCII characters.
    public mutating func text(
        _ count: Int, from alphabet: String = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+ "
    ) -> String {
        let characters = Array(alphabet)
        return String((0..<count).map { _ in characters.randomElement(using: &self)! })
    }
}
