import CNFTables
import CZeroMQ
import Testing

/// The system-library targets link against Debian's libraries, at the versions the design assumes.
@Suite struct CLibrariesTests {
    @Test func libzmqIs434() {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        #expect((major, minor) == (4, 3))
    }

    @Test func libnftablesMakesAContext() {
        let context = nft_ctx_new(UInt32(NFT_CTX_DEFAULT))
        #expect(context != nil)
        nft_ctx_free(context)
    }
}
