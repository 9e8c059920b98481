/// A guard's settings as the daemon hands them over: the front end's part, which every kind
/// shares, and (in the conforming type) what only its kind reads.
public protocol GuardConfiguration: Sendable {
    var frontEnd: FrontEndSettings { get }
}
