/// The fields a request still has to deliver: a cursor over its command's head fields, then over
/// `entriesLeft` repetitions of its entry fields.
///
/// Advancing is O(1) and allocation-free, so the gate never re-reads a request from its start.
struct TCPStorePlan: Hashable, Sendable {
    /// The request being read.
    let command: TCPStoreCommand
    /// The next head field to read.
    private var headIndex = 0
    /// Repeated entries not yet fully read (including the one in progress).
    private var entriesLeft: UInt64 = 0
    /// The next field to read within the current entry.
    private var entryIndex = 0

    /// A plan at the start of `command`'s fields.
    init(command: TCPStoreCommand) {
        self.command = command
    }

    /// Sets the number of repeated entries after the count field was accepted.
    mutating func beginEntries(_ count: UInt64) {
        entriesLeft = count
        entryIndex = 0
    }

    /// Returns the next field to read and moves past it, or nil when the request is complete.
    mutating func next() -> TCPStoreField? {
        if let field = command.headField(at: headIndex) {
            headIndex += 1
            return field
        }
        guard entriesLeft > 0, let field = command.entryField(at: entryIndex) else { return nil }
        entryIndex += 1
        if command.entryField(at: entryIndex) == nil {
            entryIndex = 0
            entriesLeft -= 1
        }
        return field
    }
}
