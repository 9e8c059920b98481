#if FUZZING
import CFuzzDriver
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A fuzz target's `main`: built with `-D FUZZING` (and `-sanitize=fuzzer`, `make fuzz`) it runs
/// libFuzzer on `callback` with the command line's options and corpus; built normally it replays
/// the inputs named on the command line (`FuzzReplay`).
public func fuzzMain(
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32, replaying body: (UnsafeRawBufferPointer) -> Void
) -> Never {
    #if FUZZING
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
    #else
    FuzzReplay.run(Array(CommandLine.arguments.dropFirst()), body)
    #endif
}

/// The fuzz targets' life without libFuzzer: each target's executable, built normally, replays
/// the inputs named on its command line (files, or directories of them: the seed corpus and the
/// regressions of `Fuzz/`) through the same function libFuzzer calls, so that every input that
/// once crashed stays a test (`make test` replays them).
///
/// Written by hand: libFuzzer is the toolchain's; this is the few lines around it.
public enum FuzzReplay {
    /// Runs `body` on every input under `arguments`; prints how many, exits 0 (a crash is the failure).
    public static func run(_ arguments: [String], _ body: (UnsafeRawBufferPointer) -> Void) -> Never {
        var count = 0
        for path in arguments {
            for file in files(under: path) {
                guard let bytes = read(file) else {
                    print("cannot read \(file)")
                    exit(2)
                }
                bytes.withUnsafeBytes { body($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
        exit(count == 0 ? 2 : 0)
    }

    /// `path` itself if it is a file, else the files directly in it, sorted.
    static func files(under path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { names.append(path + "/" + name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[0..<count]
            if count < chunk.count { return ferror(file) == 0 ? bytes : nil }
        }
    }
}

/// Cuts an input into the pieces a peer's bytes arrive in: the first byte seeds the sizes, so
/// libFuzzer explores the decoders' handling of bytes split anywhere (a header across two reads).
public struct Pieces: Sequence, IteratorProtocol {
    private let bytes: UnsafeRawBufferPointer
    private var offset: Int
    private var seed: UInt32

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        seed = UInt32(bytes.first ?? 0) | 1
        offset = bytes.isEmpty ? 0 : 1
    }

    public mutating func next() -> UnsafeRawBufferPointer? {
        guard offset < bytes.count else { return nil }
        seed = seed &* 1_103_515_245 &+ 12345
        let size = seed >> 28 == 0 ? Int(seed >> 16 & 0x3) + 1 : Int(seed >> 16 & 0x3FF) + 1
        let end = Swift.min(bytes.count, offset + size)
        defer { offset = end }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
    }
}
