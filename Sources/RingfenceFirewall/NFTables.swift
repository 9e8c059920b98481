import CNFTables

/// The one place Ringfence calls libnftables: a context that runs a whole script as one
/// transaction and captures nft's own output and error text.
///
/// Not thread-safe (libnftables contexts are not); the daemon uses one from one queue.
/// The corresponding C functions are `nft_ctx_new`, `nft_run_cmd_from_buffer` and
/// `nft_ctx_get_error_buffer`.
public final class NFTables {
    private let context: OpaquePointer

    /// - Parameter dryRun: check the script against the kernel without committing it. The kernel is
    ///   still asked, so even a dry run needs CAP_NET_ADMIN (a throwaway namespace will do).
    /// - Parameter json: print listings as JSON (`nft -j`), for reading set elements and counters.
    public init(dryRun: Bool = false, json: Bool = false) throws(FirewallError) {
        guard let context = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
            throw FirewallError(kind: .contextUnavailable, detail: "nft_ctx_new failed")
        }
        self.context = context
        nft_ctx_buffer_output(context)
        nft_ctx_buffer_error(context)
        nft_ctx_set_dry_run(context, dryRun)
        if json { nft_ctx_output_set_flags(context, UInt32(NFT_CTX_OUTPUT_JSON)) }
    }

    deinit {
        nft_ctx_free(context)
    }

    /// Runs `script` in one transaction: all of it takes effect, or none.
    /// - Returns: what nft printed on its output (empty for most scripts).
    /// - Throws: `FirewallError` carrying nft's error text.
    @discardableResult
    public func run(_ script: String) throws(FirewallError) -> String {
        let status = nft_run_cmd_from_buffer(context, script)
        let output = nft_ctx_get_output_buffer(context).map { String(cString: $0) } ?? ""
        let errors = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? ""
        guard status == 0 else {
            let detail = errors.isEmpty ? "nft returned \(status)" : errors
            throw FirewallError(kind: .rejected, detail: detail)
        }
        return output
    }
}
